"""The PostgreSQL projector: users, user statistics, orders and orders per user."""
