"""The engine: one cycle (pipeline), the daemon around it (running), and its HTTP endpoints."""
