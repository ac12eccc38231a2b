"""Running the fleet: operators and their tokens, the admin API, runtime releases, rollouts."""
