"""Who may administer Russet: API keys and the console's sign-in throttle (`AccessService`)."""
