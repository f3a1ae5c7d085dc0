"""Character-level LSTM on Tiny Shakespeare. Same as `python -m dlcore.examples.char_lstm`.

    python examples/char_lstm.py --data ../shared/data --epochs 4
    python examples/char_lstm.py --generate --sample 1000 --prime "ROMEO:"

Measured result: see the report of the 2x512 run (validation loss in nats/char and bits/char).
"""
from dlcore.examples.char_lstm import main

if __name__ == "__main__":
    raise SystemExit(main())
