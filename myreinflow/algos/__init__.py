"""Training algorithms: behaviour cloning (bc), the FQL family (fql, mfql, qc) offline and online, and
ReinFlow (reinflow)."""
