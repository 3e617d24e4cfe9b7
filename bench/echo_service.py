"""The baseline of every benchmark: the most trivial nameko RPC there is."""

from nameko.rpc import rpc


class EchoService:
    name = "bench_echo"

    @rpc
    def echo(self, value):
        return value
