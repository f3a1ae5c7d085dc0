"""Character-level LSTM language model on Tiny Shakespeare (Karpathy's char-rnn).

    python -m dlcore.examples.char_lstm [--data DIR | --text FILE] [--epochs N] [--out DIR] [--device cuda]
    python -m dlcore.examples.char_lstm --generate --out DIR --sample 1000 --prime "ROMEO:"

Embedding(V, 64) -> LSTM(64, 512, 2 layers, dropout between layers) -> Dropout -> Linear(512, V),
trained with truncated BPTT (windows of --seq-len over --batch-size contiguous columns of the
first 90 % of the text, hidden state carried across batches and detached between them), Adam,
a cosine learning-rate schedule and gradient-norm clipping. After each epoch it reports the
validation loss over the last 10 % (nats/char and bits/char) and writes an atomic checkpoint
(model, optimizer, schedule, vocabulary, arguments) to --out; --resume continues from it.
Sampling draws each character from softmax(logits / T) with a seeded NumPy generator.
"""
import argparse
import math
import os
import time

import numpy as np
from tqdm import tqdm

import dlcore
from dlcore import nn, optim
from dlcore.datasets.text import BPTTBatches, CharCorpus, TinyShakespeare

CHECKPOINT = "char_lstm.safetensors"
MODEL_ARGS = ("embedding_dim", "hidden_size", "num_layers", "dropout")


class CharLSTM(nn.Module):
    """Embedding -> multi-layer LSTM -> Dropout -> Linear: next-character logits."""

    def __init__(self, vocab_size, embedding_dim=64, hidden_size=512, num_layers=2, dropout=0.25):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, state=None):  # x (T, B) int64
        y, state = self.lstm(self.embed(x), state)  # y (T, B, H); state ((L, B, H), (L, B, H))
        T, B, H = y.shape
        logits = self.head(self.drop(y).reshape(T * B, H))  # (T * B, V)
        return logits, state


def detach_state(state):
    """Cuts the graph behind a carried (h, c) so backward stops at the batch boundary."""
    return tuple(s.detach() for s in state)


def evaluate(model, batches, device="cpu"):
    """Mean loss in nats/char over every target of `batches`, state carried, dropout off."""
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    with dlcore.no_grad():
        for inputs, targets in batches:
            logits, state = model(dlcore.from_numpy(inputs).to(device), state)
            target = dlcore.from_numpy(targets.reshape(-1)).to(device)
            total += dlcore.cross_entropy(logits, target, reduction="sum").item()
            count += targets.size
    model.train(was_training)
    return total / count


def sample(model, itos, length, temperature=1.0, prime="\n", seed=0, device="cpu"):
    """`length` characters drawn after `prime`, one at a time with the state carried."""
    if not temperature > 0:
        raise ValueError(f"sample: temperature must be > 0, got {temperature}")
    if length < 0:
        raise ValueError(f"sample: length must be >= 0, got {length}")
    stoi = {c: i for i, c in enumerate(itos)}
    prime = prime or itos[0]
    missing = sorted(set(prime) - set(stoi))
    if missing:
        raise ValueError(f"sample: prime {prime!r} has characters outside the vocabulary: {missing}")
    rng = np.random.default_rng(seed)
    was_training = model.training
    model.eval()
    out = []
    with dlcore.no_grad():
        x = np.array([stoi[c] for c in prime], dtype=np.int64)[:, None]  # (P, 1)
        logits, state = model(dlcore.from_numpy(x).to(device))
        for _ in range(length):
            z = logits.cpu().numpy()[-1].astype(np.float64) / temperature  # (V,)
            p = np.exp(z - z.max())
            nxt = int(rng.choice(p.size, p=p / p.sum()))
            out.append(itos[nxt])
            logits, state = model(dlcore.from_numpy(np.array([[nxt]], dtype=np.int64)).to(device), state)
    model.train(was_training)
    return "".join(out)


def load_corpus(args):
    """The CharCorpus from --text, else Tiny Shakespeare from --data; 90/10 contiguous split."""
    if args.text:
        return CharCorpus(path=args.text, train_fraction=0.9)
    return TinyShakespeare(args.data, train_fraction=0.9)


def checkpoint_path(out):
    return os.path.join(out, CHECKPOINT)


def build(vocab_size, args):
    """(model, optimizer, scheduler) for the given hyperparameters."""
    model = CharLSTM(vocab_size, args.embedding_dim, args.hidden_size, args.num_layers, args.dropout)
    model.to(args.device)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, args.total_steps),
                                                     eta_min=args.lr * args.min_lr_ratio)
    return model, optimizer, scheduler


def restore(args):
    """The checkpoint in --out; its model sizes (MODEL_ARGS) replace those in args."""
    path = checkpoint_path(args.out)
    ckpt = dlcore.load(path)
    for k in MODEL_ARGS:
        setattr(args, k, ckpt["args"][k])
    print(f"resuming from {path} (epoch {ckpt['epoch']}, val loss {ckpt['history'][-1]['val_loss']:.4f})"
          if ckpt["history"] else f"resuming from {path}")
    return ckpt


def train(args):
    """Trains (or resumes) and returns (model, itos, history)."""
    dlcore.manual_seed(args.seed)
    if dlcore.device(args.device).type == "cuda":
        dlcore.cuda.manual_seed(args.seed)
    corpus = load_corpus(args)
    ckpt = restore(args) if args.resume else None
    if ckpt is not None and ckpt["vocab"] != "".join(corpus.itos):
        raise ValueError(f"char_lstm: the checkpoint's vocabulary ({len(ckpt['vocab'])} chars) differs from "
                         f"this text's ({corpus.vocab_size} chars); train on the same text to resume")
    train_batches = BPTTBatches(corpus.train, args.batch_size, args.seq_len)
    val_batches = BPTTBatches(corpus.val, args.batch_size, args.seq_len)
    steps_per_epoch = len(train_batches) if args.max_steps is None else min(args.max_steps, len(train_batches))
    args.total_steps = args.epochs * steps_per_epoch
    model, optimizer, scheduler = build(corpus.vocab_size, args)
    history, first_epoch = [], 1
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scheduler.T_max = max(1, args.total_steps)  # a resumed run may have been given more epochs
        history, first_epoch = list(ckpt["history"]), ckpt["epoch"] + 1
    n_params = sum(p.numel() for p in model.parameters())
    print(f"char-LSTM on {corpus!r}\n{args.num_layers}x{args.hidden_size} LSTM, embedding {args.embedding_dim}, "
          f"{n_params:,} parameters; {steps_per_epoch} steps/epoch of {args.seq_len}x{args.batch_size} chars; "
          + (f"device {dlcore.cuda.get_device_name(args.device)}" if dlcore.device(args.device).type == "cuda"
             else f"cpu isa {dlcore.cpu_isa()}, {dlcore.get_num_threads()} threads"))
    tokens_per_step = args.seq_len * args.batch_size
    train_seconds, train_tokens = 0.0, 0
    for epoch in range(first_epoch, args.epochs + 1):
        model.train()
        state, total_loss, steps, tokens = None, 0.0, 0, 0
        start = time.perf_counter()
        bar = tqdm(train_batches, total=steps_per_epoch, desc=f"epoch {epoch}/{args.epochs}", leave=False,
                   disable=not args.progress or None)
        for inputs, targets in bar:
            if steps == steps_per_epoch:
                break
            logits, state = model(dlcore.from_numpy(inputs).to(args.device), state)
            loss = dlcore.cross_entropy(logits, dlcore.from_numpy(targets.reshape(-1)).to(args.device))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            scheduler.step()
            state = detach_state(state)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"char_lstm: the loss became {value} at epoch {epoch}, step {steps + 1}; "
                                         f"try a smaller --lr (now {args.lr}) or --clip (now {args.clip})")
            total_loss += value
            steps += 1
            tokens += targets.size
            if steps % 10 == 0 or steps == steps_per_epoch:
                rate = tokens / (time.perf_counter() - start)
                bar.set_postfix(loss=f"{total_loss / steps:.3f}", tok_s=f"{rate:,.0f}")
        seconds = time.perf_counter() - start
        train_seconds += seconds
        train_tokens += tokens
        val_loss = evaluate(model, val_batches, args.device)
        history.append({"epoch": epoch, "train_loss": total_loss / steps, "val_loss": val_loss,
                        "val_bpc": val_loss / math.log(2), "seconds": seconds, "tokens_per_s": tokens / seconds})
        save_checkpoint(args, model, optimizer, scheduler, corpus.itos, epoch, history)
        print(f"epoch {epoch:2d}  train loss {total_loss / steps:.4f}  val loss {val_loss:.4f} nats/char "
              f"({val_loss / math.log(2):.4f} bpc)  {tokens / seconds:,.0f} tok/s  {seconds:.0f} s  "
              f"lr {scheduler.get_last_lr()[0]:.2e}", flush=True)
    if train_seconds:
        print(f"trained {train_tokens:,} chars in {train_seconds:.0f} s ({train_tokens / train_seconds:,.0f} tok/s)"
              f"; tokens per step {tokens_per_step}")
    return model, corpus.itos, history


def save_checkpoint(args, model, optimizer, scheduler, itos, epoch, history):
    """Model, optimizer and schedule state, vocabulary and arguments, written atomically."""
    os.makedirs(args.out, exist_ok=True)
    saved_args = {k: v for k, v in vars(args).items() if v is None or isinstance(v, (bool, int, float, str))}
    dlcore.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "vocab": "".join(itos), "args": saved_args,
                 "epoch": epoch, "history": history}, checkpoint_path(args.out))


def load_model(out):
    """(model in eval mode, itos, history) from the checkpoint in `out`."""
    ckpt = dlcore.load(checkpoint_path(out))
    a = ckpt["args"]
    itos = list(ckpt["vocab"])
    model = CharLSTM(len(itos), a["embedding_dim"], a["hidden_size"], a["num_layers"], a["dropout"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, itos, list(ckpt["history"])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("DLCORE_DATA"),
                        help="data directory holding tinyshakespeare/input.txt.gz (default: $DLCORE_DATA)")
    parser.add_argument("--text", default=None, help="train on this text file (plain or .gz) instead")
    parser.add_argument("--out", default="char_lstm_ckpt", help="checkpoint directory (default ./char_lstm_ckpt)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--generate", action="store_true",
                        help="only sample from the checkpoint in --out (no training, no data needed)")
    parser.add_argument("--epochs", type=int, default=5, help="total epochs (a resumed run counts its done ones)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap on training steps per epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.25)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine schedule ends at lr * this")
    parser.add_argument("--clip", type=float, default=5.0, help="max gradient norm")
    parser.add_argument("--sample", type=int, default=500, help="characters to generate (0: none)")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--prime", default="ROMEO:", help="text the sample starts from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "seq_len", "embedding_dim", "hidden_size", "num_layers"):
        if getattr(args, name) < (0 if name == "epochs" else 1):
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error(f"--max-steps must be positive, got {args.max_steps}")
    if not args.temperature > 0:
        parser.error(f"--temperature must be > 0, got {args.temperature}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        dlcore.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.generate:
        model, itos, history = load_model(args.out)
        model.to(args.device)
    else:
        model, itos, history = train(args)
    prime = args.prime if set(args.prime) <= set(itos) else ""
    if prime != args.prime:
        print(f"prime {args.prime!r} has characters outside the vocabulary; starting from {itos[0]!r}")
    text = sample(model, itos, args.sample, args.temperature, prime, args.seed, args.device) if args.sample else ""
    wall = time.perf_counter() - start
    if history:
        last = history[-1]
        rate = sum(h["tokens_per_s"] * h["seconds"] for h in history) / sum(h["seconds"] for h in history)
        print(f"final val loss {last['val_loss']:.4f} nats/char ({last['val_bpc']:.4f} bpc) after epoch "
              f"{last['epoch']}; wall {wall:.0f} s; train {rate:,.0f} tok/s")
    if text:
        print(f"sample (T={args.temperature}):\n{prime}{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
