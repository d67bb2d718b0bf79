"""What a rate monitor's film parameters may be: the one statement the driver, the deposition procedure and the
emulated SQM-160 check against.

The ranges are those of the Sycon STM-100 family the SQM-160 comes from (research/instruments.md §6.5: density
0.500-99.99 g/cm³, Z-factor 0.100-9.999, tooling 10.0-399 %, end thickness 0-9,999,999 Å, setpoint timer up to
99:59); each is (lowest, highest), both allowed.
"""

from __future__ import annotations

import re

NM_PER_KA = 100.0
FILM_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,8}$")  # a name the monitor can store (8 characters)
DENSITY_G_CM3 = (0.5, 99.99)
Z_RATIO = (0.1, 9.999)
TOOLING_PCT = (10.0, 399.0)
THICKNESS_KA = (0.0, 9999.999)  # the largest thickness a monitor shows
TIME_SETPOINT_S = (0, 99 * 60 + 59)
SENSOR_MASK = (1, 63)  # a bit per sensor averaged into the film's output, six sensors
FILM_NUMBERS = (1, 99)
