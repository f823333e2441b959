"""What an operator needs: metrics, health checks and structured logs."""
