# Lock scenarios for tests/fuse/lock_test.cpp and tests/cluster/plock_test.cpp: run on a
# directory, print one line per outcome. The tests run it on a lunfs mount and on the
# host's ext4 (/var/tmp), whose kernel-local locks are the reference, and compare.
import errno, fcntl, os, signal, struct, sys, time

d = sys.argv[1]
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38

def out(*a):
    print(*a, flush=True)

def path(name):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(b"x" * 4096)
    return p

def res(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]

def after_release(fn):
    """fn's outcome once the description closed before is released. FUSE sends RELEASE in
    the background (close() does not wait for it; only fuseblk mounts release
    synchronously), so an OFD or flock lock may outlive the last close by a moment:
    retry EAGAIN for up to 5 s (docs/cluster.md, "File locks")."""
    deadline = time.monotonic() + 5
    while True:
        r = res(fn)
        if r != "EAGAIN" or time.monotonic() > deadline:
            return r
        time.sleep(0.01)

def ofd(fd, cmd, typ, start, length):
    data = struct.pack("=hh4xqqi4x", typ, os.SEEK_SET, start, length, 0)
    return struct.unpack("=hh4xqqi4x", fcntl.fcntl(fd, cmd, data))

def getlk(fd, typ, start, length):
    data = struct.pack("=hh4xqqi4x", typ, os.SEEK_SET, start, length, 0)
    t, w, s, l, pid = struct.unpack("=hh4xqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, data))
    return t, s, l, pid

def in_child(fn):
    """Runs fn in a child process; returns its printed result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            s = fn()
        except Exception as e:
            s = "exception %r" % e
        os.write(w, s.encode())
        os._exit(0)
    os.close(w)
    s = b""
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        s += b
    os.close(r)
    os.waitpid(pid, 0)
    return s.decode()

def opened(p):
    return os.open(p, os.O_RDWR)

# 1. POSIX conflicts, F_GETLK from another process, ranges.
p = path("posix")
fd = opened(p)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
me = os.getpid()
def probe():
    f = opened(p)
    a = res(lambda: fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 2, 5))
    b = res(lambda: fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 20))
    c = res(lambda: fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 9))
    t, s, l, pid = getlk(f, fcntl.F_WRLCK, 3, 100)
    u = getlk(f, fcntl.F_WRLCK, 10, 5)[0] == fcntl.F_UNLCK
    return "inside=%s outside=%s edge=%s getlk=%s,%d,%d,%s free=%s" % (a, b, c, "W" if t == fcntl.F_WRLCK else t, s, l, "holder" if pid == me else pid, u)
out("posix", in_child(probe))

# 2. Unlock in the middle splits; a read lock of another process fits in the hole only.
fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)
fcntl.lockf(fd, fcntl.LOCK_UN, 20, 40)
def hole():
    f = opened(p)
    return "hole=%s left=%s right=%s" % (
        res(lambda: fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB, 20, 40)),
        res(lambda: fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB, 5, 35)),
        res(lambda: fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB, 5, 60)))
out("split", in_child(hole))

# 3. Any close of the file by the process drops its POSIX locks.
other = opened(p)
os.close(other)
out("close-drops", in_child(lambda: res(lambda: fcntl.lockf(opened(p), fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0))))
os.close(fd)

# 4. Upgrade refused while another reader holds; the read lock stays.
p = path("upgrade")
fd = opened(p)
fcntl.lockf(fd, fcntl.LOCK_SH, 10, 0)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    f = opened(p)
    fcntl.lockf(f, fcntl.LOCK_SH, 10, 0)
    os.write(w, b"1")
    time.sleep(30)
    os._exit(0)
os.read(r, 1)
out("upgrade", res(lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)),
    "still-read", in_child(lambda: res(lambda: fcntl.lockf(opened(p), fcntl.LOCK_SH | fcntl.LOCK_NB, 10, 0))))
# 5. The lock of a killed process is freed.
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
out("after-kill", res(lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)))
os.close(fd)

# 6. F_SETLKW waits for the unlock; a signal interrupts a wait, which leaves nothing behind.
p = path("wait")
fd = opened(p)
fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)
def waiter():
    f = opened(p)
    t0 = time.monotonic()
    fcntl.lockf(f, fcntl.LOCK_EX, 0, 0)
    return "waited" if time.monotonic() - t0 > 0.4 else "did-not-wait"
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, in_child(waiter).encode())
    os._exit(0)
time.sleep(0.6)
fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0)
os.waitpid(pid, 0)
out("setlkw", os.read(r, 100).decode())
fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)
class Alarm(Exception):
    pass
def interrupted():
    def on_alarm(signum, frame):
        raise Alarm()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    f = opened(p)
    try:
        fcntl.lockf(f, fcntl.LOCK_EX, 0, 0)
        return "granted"
    except Alarm:
        return "interrupted"
out("interrupt", in_child(interrupted))
fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0)
out("after-interrupt", in_child(lambda: res(lambda: fcntl.lockf(opened(p), fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0))))
# SIGKILL of a process that waits ends its wait (and so the process).
fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)
pid = os.fork()
if pid == 0:
    fcntl.lockf(opened(p), fcntl.LOCK_EX, 0, 0)
    os._exit(0)
time.sleep(0.3)
os.kill(pid, signal.SIGKILL)
out("killed-waiter", "exited" if os.waitpid(pid, 0)[1] == signal.SIGKILL else "granted")
fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0)
out("after-killed-waiter", in_child(lambda: res(lambda: fcntl.lockf(opened(p), fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0))))
os.close(fd)

# 7. Deadlock between two processes: the second wait that closes the cycle gets EDEADLK.
p = path("deadlock")
fd = opened(p)
fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    f = opened(p)
    fcntl.lockf(f, fcntl.LOCK_EX, 1, 1)
    os.write(w, b"1")
    fcntl.lockf(f, fcntl.LOCK_EX, 1, 0)  # waits for the parent
    os.write(w, b"2")
    os._exit(0)
os.read(r, 1)
time.sleep(0.5)
out("deadlock", res(lambda: fcntl.lockf(fd, fcntl.LOCK_EX, 1, 1)))
fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0)
out("deadlock-child", os.read(r, 1).decode())
os.waitpid(pid, 0)
os.close(fd)

# 8. OFD locks: owned by the open file description, not the process.
p = path("ofd")
a = opened(p)
ofd(a, F_OFD_SETLK, fcntl.F_WRLCK, 100, 1)
b = opened(p)
out("ofd-same-process", res(lambda: ofd(b, F_OFD_SETLK, fcntl.F_RDLCK, 100, 1)),
    "ofd-getlk", ofd(b, F_OFD_GETLK, fcntl.F_RDLCK, 0, 0)[0] == fcntl.F_WRLCK,
    "posix-vs-ofd", in_child(lambda: res(lambda: fcntl.lockf(opened(p), fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 100))))
c = opened(p)
os.close(c)  # a POSIX lock would go; the OFD lock stays
out("ofd-survives-other-close", res(lambda: ofd(b, F_OFD_SETLK, fcntl.F_RDLCK, 100, 1)))
# QEMU's pattern: a failed attempt through a description that is then closed leaves nothing.
os.close(b)
os.close(a)
a = opened(p)
out("ofd-after-release", after_release(lambda: ofd(a, F_OFD_SETLK, fcntl.F_WRLCK, 100, 1)))
# A forked child shares the description and so the lock; its exit does not drop it.
in_child(lambda: "")
out("ofd-after-child-exit", in_child(lambda: res(lambda: ofd(opened(p), F_OFD_SETLK, fcntl.F_RDLCK, 100, 1))))
os.close(a)

# 9. flock: per description, separate from fcntl locks, released at the last close.
p = path("flock")
a = opened(p)
fcntl.flock(a, fcntl.LOCK_EX)
b = opened(p)
out("flock-ex", res(lambda: fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)),
    "flock-sh", res(lambda: fcntl.flock(b, fcntl.LOCK_SH | fcntl.LOCK_NB)),
    "fcntl-beside-flock", res(lambda: fcntl.lockf(b, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)))
dup = os.dup(a)
os.close(a)
out("flock-kept-by-dup", res(lambda: fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)))
os.close(dup)
out("flock-after-last-close", after_release(lambda: fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)))
fcntl.flock(b, fcntl.LOCK_SH)
out("flock-downgrade-shares", in_child(lambda: res(lambda: fcntl.flock(opened(p), fcntl.LOCK_SH | fcntl.LOCK_NB))))
fcntl.flock(b, fcntl.LOCK_UN)
out("flock-unlocked", in_child(lambda: res(lambda: fcntl.flock(opened(p), fcntl.LOCK_EX | fcntl.LOCK_NB))))
os.close(b)
