"""`python -m rolloutlang` does what the `rollout` command does."""

from rolloutlang.cli import main

if __name__ == "__main__":
    main()
