"""The microVM backend (in progress): QEMU `-M microvm` booting the guest artefacts of
`images/guest`, with no network device. Not registered as a backend yet: so far it
builds a VM's command line, boots it to a marker and probes which accelerator works."""
