public import Foundation
public import LetheCatalog
public import LetheCore
public import Logging

/// The sinks `notify: {…}` configures, built at startup: one `WebhookSink` per hook (its secret read
/// from the environment now, so a missing variable stops the start with an error naming
/// `notify.webhooks[i].secret_env`), then the `EmailSink` when `notify.email` is set.
public enum NotificationSinks {
    public static func make(
        _ notify: NotifyConfig, publicURL: String?, environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger
    ) throws -> [any NotificationSink] {
        var sinks: [any NotificationSink] = []
        for (i, hook) in notify.webhooks.enumerated() {
            sinks.append(try WebhookSink(hook, index: i, environment: environment))
        }
        if let email = notify.email {
            sinks.append(try EmailSink(email, publicURL: publicURL, logger: logger))
        }
        let names = sinks.map(\.name)
        if let dup = names.first(where: { n in names.filter { $0 == n }.count > 1 }) {
            throw LetheError.badInput("`\(dup)` is configured twice (its delivery state is kept by name)", at: "notify.webhooks")
        }
        return sinks
    }
}
