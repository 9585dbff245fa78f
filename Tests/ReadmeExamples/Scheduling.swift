import Octopus

struct CleanSessions: Subscription {
    static let schedule = Schedule(interval: "10m", type: .worker, immediate: true, timeout: .seconds(30))
    let store: SessionStore
    func subscribe(_ context: ScheduleContext) async throws {
        let removed = try await store.removeExpired()
        context.logger.info("removed \(removed) sessions")   // category schedule.CleanSessions
    }
}

// In an application: app.schedules.register { CleanSessions(store: SessionStore()) }: timed by the agent, run by the
// workers. A Scheduler on its own runs everything in one process:
func scheduleInOneProcess() async throws {
    let octopus = try OctopusConfiguration.load(directory: "config")   // every section: log, schedule, cluster
    let logging = try LogSystem(octopus.log)
    let scheduler = try octopus.makeScheduler(logging: logging)          // the schedule: section's tasks
    try scheduler.register(CleanSessions(store: SessionStore()))
    try scheduler.register(ScheduledTask(name: "ping", schedule: Schedule(cron: "*/15 * * * * *")) { context in
        context.logger.info("tick \(context.tick.jobID), scheduled \(context.tick.scheduledTime)")
    })
    // logging first, so that it stops last; graceful shutdown stops the timers and waits for running tasks
    let group = ServiceGroup(services: [logging, scheduler], gracefulShutdownSignals: [.sigterm, .sigint],
                             logger: logging.logger(label: "app"))
    try await group.run()
}
