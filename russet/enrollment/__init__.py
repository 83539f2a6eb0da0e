"""Enrollment: Russet's certificate authority and the enrollment profiles it hands out."""
