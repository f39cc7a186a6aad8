"""Miner API emulators over real sockets, backed by the plant's miner model (see core.py)."""
