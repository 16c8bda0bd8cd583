"""Training algorithms: behaviour cloning (bc) and flow Q-learning (fql)."""
