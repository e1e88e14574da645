"""`python -m syncd`: the same as the `syncd` command."""

from syncd.cli import main

if __name__ == "__main__":  # not again in a helper process (connectors.mailpool)
    main()
