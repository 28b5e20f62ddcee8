"""Chapters 2–6, chapters/02_ssm: LTI systems, HiPPO, S4/S4D, Mamba, selective copying."""
_SHARED = dict(
    # LTI systems: the steps of the eigenvalue map and of the measured orders (deterministic, a second or two)
    eig_dts=[0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0], order_dts=[0.1, 0.05, 0.025, 0.0125, 0.00625],
    # HiPPO: the animation, the error against N, the memory experiment
    hippo_L=400, hippo_steps=list(range(20, 401, 20)), hippo_N=[4, 8, 16, 32, 64], hippo_error_L=1000,
    memory_N=16, memory_dt=0.05, memory_steps=3000, memory_delays=60,
    # S4: the kernel check, the Mamba hidden-state animation
    kernel_L=256, state_L=200, state_frames=40,
)
CPU = dict(_SHARED, block_d_model=32, block_L=64,
           copy_length=16, copy_memorize=4, copy_colors=4, copy_train=2000, copy_test=256,
           copy_steps=300, copy_d_model=32, copy_layers=2, copy_batch=32, copy_lr=1e-2, copy_d_state=8)
GPU = dict(_SHARED, block_d_model=64, block_L=256,
           copy_length=256, copy_memorize=16, copy_colors=16, copy_train=20000, copy_test=1024,
           copy_steps=2000, copy_d_model=64, copy_layers=2, copy_batch=64, copy_lr=3e-3, copy_d_state=16)
SMOKE = dict(hippo_steps=[20, 200, 400], hippo_N=[4, 16, 32], hippo_error_L=400, memory_steps=400, memory_delays=20,
             state_frames=4, copy_train=64, copy_test=16, copy_steps=2, copy_batch=8)
