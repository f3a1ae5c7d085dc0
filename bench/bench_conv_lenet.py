"""LeNet-5's two convolutions, each direction, one library per process (run it twice):

    python bench/bench_conv_lenet.py dlcore
    python bench/bench_conv_lenet.py torch

Prints the min over 5 repeats of the mean time per call (us), batch 64, float32.
"""
import sys, timeit, numpy as np
lib=sys.argv[1]
shapes=[((64,1,28,28),(6,1,5,5),2),((64,6,14,14),(16,6,5,5),0)]
n=100
def t(name, f):
    r=min(timeit.repeat(f, number=n, repeat=5))/n*1e6; print(f"{lib:6s} {name:28s} {r:8.1f} us")
if lib=="dlcore":
    import dlcore; from dlcore import _C
    for xs,ws,p in shapes:
        x=np.random.rand(*xs).astype(np.float32); w=np.random.rand(*ws).astype(np.float32)
        y=_C.conv2d_forward(x,w,None,(1,1),(p,p),(1,1),1); g=np.random.rand(*y.shape).astype(np.float32)
        t(f"fwd {ws}", lambda: _C.conv2d_forward(x,w,None,(1,1),(p,p),(1,1),1))
        t(f"bwd_in {ws}", lambda: _C.conv2d_backward_input(w,g,xs,(1,1),(p,p),(1,1),1))
        t(f"bwd_w {ws}", lambda: _C.conv2d_backward_weight(x,g,ws,(1,1),(p,p),(1,1),1,True))
else:
    import torch; torch.set_num_threads(2)
    for xs,ws,p in shapes:
        x=torch.rand(*xs); w=torch.rand(*ws)
        y=torch.nn.functional.conv2d(x,w,padding=p); g=torch.rand(*y.shape)
        t(f"fwd {ws}", lambda: torch.nn.functional.conv2d(x,w,padding=p))
        t(f"bwd_in {ws}", lambda: torch.nn.grad.conv2d_input(xs,w,g,padding=p))
        t(f"bwd_w {ws}", lambda: torch.nn.grad.conv2d_weight(x,ws,g,padding=p))
