"""Twin of kernels/paging.py: the block count step by step, sequence by sequence."""


def blocks_taken(cached_tokens, cap_tokens, block_tokens, steps):
    out = []
    for j in range(int(steps)):
        out.append(sum(max(0, (j - (int(cap) - int(cached))) // int(block_tokens) + 1)
                       for cached, cap in zip(cached_tokens, cap_tokens)))
    return out
