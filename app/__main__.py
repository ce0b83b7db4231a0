"""``python -m app``: the ``pulseboard`` command (:mod:`app.cli.main`)."""

from app.cli.main import main

if __name__ == "__main__":
    main()
