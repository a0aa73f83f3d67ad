"""Running an emulation: processes, clocks, config files, wire formats and event logs.

See docs/runtime.md. Modules: :mod:`.wire` (fabric attachment and application datagrams),
:mod:`.clock` (the run clock), :mod:`.layout` (files of a run), :mod:`.config` (child process
config files), :mod:`.eventlog` (packet event logs), and the process hosts.
"""
