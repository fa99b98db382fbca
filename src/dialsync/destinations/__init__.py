"""Dialers and other systems that receive contacts, behind one Destination protocol."""
