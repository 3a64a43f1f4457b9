"""Açık Kapı: the citizen request system's services, one package each, plus `common`."""
