import Hummingbird
import HummingbirdTLS
import LetheCatalog
import LetheCore
import LetheEngine
import LetheNotify
import LetheRuntime
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

// `lethe serve` (issue 14): the module's imports in one place; the notification dispatcher (LetheNotify) joins through `LetheServe.services(extra:)`.
