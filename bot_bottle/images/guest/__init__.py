"""What a microVM boots: a Debian cloud kernel, an initramfs bot-bottle builds, and a
read-only root image made from the same agent image the Docker backend runs. Each is
content-addressed and cached under the state home (`cache/microvm/`)."""
