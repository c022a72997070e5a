"""The grammar of the .rollout language, shipped as package data (``rollout.lark``)."""
