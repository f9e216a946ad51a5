"""What we learn: trajectories with Jacobians, certificates, critical points, tunnels, bounds,
continuum-limit diagnostics, HDF5 export and plots."""
