"""Compilers from a checked plan to deployment configs, one module per target.

The registry is filled as targets land (Argo Rollouts, Istio, GitLab CI,
GitHub Actions); see the compile issue.
"""
