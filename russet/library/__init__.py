"""The profile library: configuration profiles uploaded once, validated against Apple's schemas,
versioned, and delivered to each device signed by Russet with its own values substituted."""
