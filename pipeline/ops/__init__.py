"""Operations: serving worker and dashboard together, health checks and statistics."""
