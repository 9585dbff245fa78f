import CShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The pid file of a running service, which is also its lock: the service holds a POSIX write lock on it for as long
/// as it lives, so the file never lies about who runs. A second service finds the lock held (and by whom, from the
/// kernel, not from the file's text); a file left by a process that is gone has no lock, and is simply taken over.
package final class PidFile: Sendable {
    package let path: String
    private let fd: Int32

    /// Why the pid file could not be taken.
    package enum Failure: Error, Sendable, CustomStringConvertible {
        /// Another live process holds it.
        case held(path: String, pid: Int32)
        case system(path: String, what: String, errno: Int32)

        package var description: String {
            switch self {
            case .held(let path, let pid): "already running as pid \(pid) (\(path) is locked by it)"
            case .system(let path, let what, let code): "cannot \(what) \(path): \(String(cString: strerror(code)))"
            }
        }
    }

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Locks `path` (created 0644 if missing) and writes this process's pid into it.
    package static func acquire(_ path: String) throws(Failure) -> PidFile {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw .system(path: path, what: "open", errno: errno) }
        if octopus_lock_file(fd) != 0 {
            let code = errno
            let holder = octopus_lock_holder(fd)
            close(fd)
            if holder > 0 { throw .held(path: path, pid: holder) }
            throw .system(path: path, what: "lock", errno: code)
        }
        fchmod(fd, 0o644)
        let text = Array("\(getpid())\n".utf8)
        guard ftruncate(fd, 0) == 0, pwrite(fd, text, text.count, 0) == text.count else {
            let code = errno
            close(fd)
            throw .system(path: path, what: "write", errno: code)
        }
        return PidFile(path: path, fd: fd)
    }

    /// The pid of the live process holding the lock on `path`, or nil when nothing runs (no file, or a stale one).
    package static func holder(_ path: String) -> Int32? {
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let pid = octopus_lock_holder(fd)
        return pid > 0 ? pid : nil
    }

    /// Removes the file and releases the lock (the process ending releases it too).
    package func release() {
        unlink(path)
        close(fd)
    }
}
