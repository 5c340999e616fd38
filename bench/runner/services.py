"""Redis and the API, which contenders may need (`needs`): started and stopped by `scripts/bench.sh service`, so
that the shell script stays the one place that starts and stops processes. The API runs per synchronous_commit
value (its connections' options) with a pool of the contender's client count, on the scenario's database."""
import os
import subprocess


class Services:
    def __init__(self, env):
        self.env = env
        self.running = {}  # name -> the arguments it was started with

    def _call(self, *args):
        subprocess.run([os.path.join(self.env.root, "scripts", "bench.sh"), "service", *args], check=True)

    def want(self, needs, sync, clients, db):
        """Exactly the services `needs`, the API with this sync, pool and database: stops the others (and an API
        started with other arguments), starts what is missing."""
        wanted = {"redis": (), "api": (sync, str(clients), db)}
        for name, args in list(self.running.items()):
            if name not in needs or wanted[name] != args:
                self._call("stop", name)
                del self.running[name]
        for name in needs:
            if name not in self.running:
                self._call("start", name, *wanted[name])
                self.running[name] = wanted[name]

    def stop_all(self):
        self.want([], None, None, None)

    def api_pid(self):
        with open(os.path.join(self.env.work, "api.pid")) as f:
            return int(f.read().strip())


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
