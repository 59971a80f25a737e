"""`python -m sttdata_cli ...`: the same as the `sttdata` console script."""

from sttdata_cli.main import main

main()
