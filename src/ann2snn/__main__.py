"""``python -m ann2snn``: the command line."""

from ann2snn.cli import main

if __name__ == "__main__":
    main()
