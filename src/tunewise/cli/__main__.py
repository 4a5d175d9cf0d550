"""`python -m tunewise.cli ...` runs the command line."""

from tunewise.cli import main

main()
