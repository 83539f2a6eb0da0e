"""The device-facing side: Apple's MDM check-in and command protocols."""
