"""The realtime Socket.IO gateway."""
