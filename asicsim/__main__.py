from asicsim.cli import entry

entry()
