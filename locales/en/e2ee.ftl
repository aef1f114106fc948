# e2ee: English texts (see src/i18n/mod.rs).

# A copy waits for its recipient's first device (shown in `!bc status`).
e2ee-no-device-yet = waiting: the recipient has no device that could decrypt it yet
