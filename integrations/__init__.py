"""Adapters of the strategies to other libraries (installed as ``nes_asktell.integrations``)."""
