"""The staff console: accounts, login, sessions and the staff pages under `/console/`."""
