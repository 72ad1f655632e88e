"""Help texts of settings whose reason a user should read where they set them (the `start`
option and the settings model share them). No pydantic here: `start --help` stays light."""

STAGGER_HELP = (
    "Seconds between worker starts of this user's daemons when many may start at once (a "
    "run's first worker, or after a wait such as a usage-limit reset they all wake up for), "
    "so a herd of workers does not hit the API together [default: 3]. Ordinary iterations "
    "never wait for it."
)
