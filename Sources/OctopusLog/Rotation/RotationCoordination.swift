/// Who rolls a rotating file when several processes write it. Every process writes its own lines with `O_APPEND`
/// (whole lines per write, so lines never tear); exactly one process may rename, archive and prune, or two would roll
/// the same file and lines written into a file already archived would be lost.
///
/// - `alone`: this process rolls its files itself (the only writer).
/// - `owner`: this process rolls every rotating file, by size (it watches the file's size, whoever wrote it) and by
///   period. Right after a roll, on the writer's thread, `announce` is called with the appender's file name: it must
///   not block (it tells the other processes to reopen the path) and returns a wait that the maintenance thread calls
///   before archiving the rolled file, which returns once no other process writes to it any more — each has
///   reopened the path, or is gone.
/// - `follower`: another process rolls. This one never renames or archives, and does no start-up recovery; when a file
///   it writes has grown past its `maxLogSize` it calls `requestRoll` with the file name (at most every 20 ms while it
///   stays too big); it reopens a file when ``LogSystem/reopen(file:)`` says so (and, as always, when its path no
///   longer names the open file).
public struct RotationCoordination: Sendable {
    enum Mode: Sendable {
        case alone
        case owner(announce: @Sendable (String) -> @Sendable () -> Void)
        case follower(requestRoll: @Sendable (String) -> Void)
    }

    let mode: Mode

    public static let alone = RotationCoordination(mode: .alone)

    public static func owner(announce: @escaping @Sendable (String) -> @Sendable () -> Void) -> RotationCoordination {
        RotationCoordination(mode: .owner(announce: announce))
    }

    public static func follower(requestRoll: @escaping @Sendable (String) -> Void) -> RotationCoordination {
        RotationCoordination(mode: .follower(requestRoll: requestRoll))
    }

    var isFollower: Bool {
        if case .follower = mode { return true }
        return false
    }

    var announce: (@Sendable (String) -> @Sendable () -> Void)? {
        if case .owner(let announce) = mode { return announce }
        return nil
    }

    /// Whether other processes write the files too, so that sizes are read from the file, not counted.
    var isShared: Bool {
        if case .alone = mode { return false }
        return true
    }

    var requestRoll: (@Sendable (String) -> Void)? {
        if case .follower(let request) = mode { return request }
        return nil
    }
}
