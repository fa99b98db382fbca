"""The sync row's state machine: what a contact implies (decide) and how each event moves a row
(transitions). Pure: no database, no I/O; the store applies it, the engine drives it."""
