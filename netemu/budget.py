"""Free-space optical link budget -> link margin -> frame-loss probability.

Received power (dBm) = P_tx + G_tx + G_rx - L_fs - L_point - L_impl - L_atm, with aperture gains
G = 10 log10((pi D / lambda)^2) and free-space loss L_fs = 20 log10(4 pi R / lambda). The margin
is received power minus the receiver sensitivity. Power fluctuations (scintillation, pointing
jitter) are modelled as a Gaussian spread of the received power in dB with standard deviation
``fading_sigma_db``, so a frame is lost when the instantaneous margin drops below zero:

    loss = P(margin + X < 0), X ~ N(0, sigma^2)  =  0.5 * erfc(margin / (sigma * sqrt 2))

A link whose mean margin is negative loses more than half of its frames and counts as down
(reason ``link-budget``). Loss grows monotonically with range and atmospheric attenuation.

>>> from netemu.scenario import OpticalBudget
>>> b = OpticalBudget()
>>> round(float(link_margin_db(b, 5_000e3)), 2)
6.24
>>> float(frame_loss_probability(link_margin_db(b, 1_000e3), b.fading_sigma_db)) < 1e-6
True
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc

from .scenario.model import OpticalBudget


def aperture_gain_db(aperture_m: float, wavelength_m: float) -> float:
    return 20.0 * np.log10(np.pi * aperture_m / wavelength_m)


def free_space_loss_db(range_m, wavelength_m: float):
    return 20.0 * np.log10(4.0 * np.pi * np.asarray(range_m, dtype=np.float64) / wavelength_m)


def atmospheric_loss_db(zenith_attenuation_db: float, elevation_deg):
    """Plane-parallel atmosphere: zenith attenuation scaled by the air mass 1/sin(elevation)."""
    el = np.radians(np.clip(np.asarray(elevation_deg, dtype=np.float64), 0.5, 90.0))
    return zenith_attenuation_db / np.sin(el)


def received_power_dbm(budget: OpticalBudget, range_m, extra_loss_db=0.0):
    lam = budget.wavelength_nm * 1e-9
    p_tx_dbm = 10.0 * np.log10(budget.tx_power_w * 1000.0)
    return (
        p_tx_dbm
        + aperture_gain_db(budget.tx_aperture_m, lam)
        + aperture_gain_db(budget.rx_aperture_m, lam)
        - free_space_loss_db(range_m, lam)
        - budget.pointing_loss_db
        - budget.implementation_loss_db
        - extra_loss_db
    )


def link_margin_db(budget: OpticalBudget, range_m, extra_loss_db=0.0):
    return received_power_dbm(budget, range_m, extra_loss_db) - budget.rx_sensitivity_dbm


def frame_loss_probability(margin_db, fading_sigma_db: float):
    return 0.5 * erfc(np.asarray(margin_db, dtype=np.float64) / (fading_sigma_db * np.sqrt(2.0)))
