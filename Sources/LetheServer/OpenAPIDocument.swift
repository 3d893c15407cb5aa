/// `/openapi.yaml`: the API as OpenAPI 3.1, written by hand. `OpenAPITests` holds it to the router:
/// every route of `APIRoute.all` is in it with its method, and nothing else is.
enum OpenAPIDocument {
    static let yaml = #"""
        openapi: 3.1.0
        info:
          title: Lethe
          version: 0.1.0
          description: |
            The right-to-be-forgotten engine's HTTP API (`lethe serve`). Subjects travel in request bodies only,
            never in URLs. Bodies are the report types `lethe … --json` prints. Every error has one shape:
            `{"error": {"code", "message"}}`. Bearer tokens come from `lethe token create --name N --role R`,
            or, with `serve.oidc`, are JWTs of the configured OpenID Connect provider (docs/serve.md).
        servers:
          - url: /
        security:
          - bearer: []
        tags:
          - name: requests
          - name: lake
          - name: service
        paths:
          /v1/requests:
            post:
              tags: [requests]
              summary: File erasure requests (one per subject), each planned at once
              description: "Roles: requester, admin. A subject with an open request gets that request back."
              operationId: fileRequests
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: '#/components/schemas/FileRequests'}
              responses:
                '201':
                  description: The requests, filed and planned (or already open)
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/RequestList'}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '403': {$ref: '#/components/responses/Forbidden'}
                '413': {$ref: '#/components/responses/TooLarge'}
                '422': {$ref: '#/components/responses/Unprocessable'}
            get:
              tags: [requests]
              summary: List requests in filing order, a page at a time
              description: "Roles: requester (its own only), approver, auditor, admin."
              operationId: listRequests
              parameters:
                - name: status
                  in: query
                  schema: {$ref: '#/components/schemas/Status'}
                - name: cursor
                  in: query
                  description: The `next_cursor` of the previous page.
                  schema: {type: string}
                - name: limit
                  in: query
                  schema: {type: integer, minimum: 1, maximum: 1000, default: 100}
              responses:
                '200':
                  description: One page
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/RequestPage'}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '403': {$ref: '#/components/responses/Forbidden'}
          /v1/requests/{id}:
            get:
              tags: [requests]
              summary: One request with its plan and verification
              description: "Roles: requester (its own only; 404 for the others), approver, auditor, admin."
              operationId: showRequest
              parameters:
                - $ref: '#/components/parameters/RequestID'
              responses:
                '200':
                  description: The request
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/RequestDetail'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '403': {$ref: '#/components/responses/Forbidden'}
                '404': {$ref: '#/components/responses/NotFound'}
          /v1/requests/{id}/approve:
            post:
              tags: [requests]
              summary: Approve a planned request (four eyes; never by whoever filed it, not even an admin)
              description: "Roles: approver, admin. The body, if any, is an empty object."
              operationId: approveRequest
              parameters:
                - $ref: '#/components/parameters/RequestID'
              requestBody:
                required: false
                content:
                  application/json:
                    schema: {type: object, additionalProperties: false}
              responses:
                '200':
                  description: The request, approved
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/Request'}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '403': {$ref: '#/components/responses/Forbidden'}
                '404': {$ref: '#/components/responses/NotFound'}
                '409': {$ref: '#/components/responses/Conflict'}
                '413': {$ref: '#/components/responses/TooLarge'}
          /v1/requests/{id}/reject:
            post:
              tags: [requests]
              summary: Reject a request, with a reason
              description: "Roles: approver, admin."
              operationId: rejectRequest
              parameters:
                - $ref: '#/components/parameters/RequestID'
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      additionalProperties: false
                      required: [reason]
                      properties:
                        reason: {type: string, minLength: 1}
              responses:
                '200':
                  description: The request, rejected
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/Request'}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '403': {$ref: '#/components/responses/Forbidden'}
                '404': {$ref: '#/components/responses/NotFound'}
                '409': {$ref: '#/components/responses/Conflict'}
                '413': {$ref: '#/components/responses/TooLarge'}
          /v1/requests/{id}/certificate:
            get:
              tags: [requests]
              summary: The request's certificate of erasure
              description: |
                Roles: requester (its own only), approver, auditor, admin. Issued for verified requests only (409
                otherwise), as `lethe certificate ID --json` writes it; `lethe certificate verify FILE --key KEY`
                checks it offline against the key of /v1/keys.
              operationId: requestCertificate
              parameters:
                - $ref: '#/components/parameters/RequestID'
              responses:
                '200':
                  description: The signed certificate
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/Certificate'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '403': {$ref: '#/components/responses/Forbidden'}
                '404': {$ref: '#/components/responses/NotFound'}
                '409': {$ref: '#/components/responses/Conflict'}
          /v1/locate:
            post:
              tags: [lake]
              summary: Where a subject's rows are, from the index (no request is filed)
              description: "Roles: requester, approver, admin. The subject is in the body, never in the URL."
              operationId: locate
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      additionalProperties: false
                      required: [subject]
                      properties:
                        subject: {$ref: '#/components/schemas/Subject'}
              responses:
                '200':
                  description: One entry per object holding the subject
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/LocateReport'}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '403': {$ref: '#/components/responses/Forbidden'}
                '413': {$ref: '#/components/responses/TooLarge'}
                '422': {$ref: '#/components/responses/Unprocessable'}
          /v1/audit:
            get:
              tags: [lake]
              summary: The hash-chained audit log after a sequence number, a page at a time
              description: "Roles: auditor, admin."
              operationId: auditLog
              parameters:
                - name: after
                  in: query
                  schema: {type: integer, minimum: 0, default: 0}
                - name: limit
                  in: query
                  schema: {type: integer, minimum: 1, maximum: 10000, default: 1000}
              responses:
                '200':
                  description: Entries in order; `next_after` is the `after` of the next page (null at the end)
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [entries, next_after]
                        additionalProperties: false
                        properties:
                          entries:
                            type: array
                            items: {$ref: '#/components/schemas/AuditEntry'}
                          next_after: {type: [integer, 'null']}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '403': {$ref: '#/components/responses/Forbidden'}
          /v1/audit/head:
            get:
              tags: [lake]
              summary: The audit chain's newest entry (record it elsewhere; `lethe audit --check --expect-head`)
              description: "Roles: auditor, admin."
              operationId: auditHead
              responses:
                '200':
                  description: The head; `seq` 0 and `hash` null for an empty log
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [seq, hash, head]
                        additionalProperties: false
                        properties:
                          seq: {type: integer, minimum: 0}
                          hash: {type: [string, 'null']}
                          head: {type: string, description: "SEQ:HASH, or - for an empty log"}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '403': {$ref: '#/components/responses/Forbidden'}
          /v1/deletions:
            get:
              tags: [lake]
              summary: The stream deletion set (stream tags), or its changes since a cursor
              description: "Roles: stream, admin. Pass `latest` back as `since` next time."
              operationId: deletions
              parameters:
                - name: since
                  in: query
                  description: Milliseconds since the epoch, or an ISO 8601 time; absent for the whole set.
                  schema: {type: string}
              responses:
                '200':
                  description: Tags added and removed, and the next cursor
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/Deletions'}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '403': {$ref: '#/components/responses/Forbidden'}
          /v1/index:
            post:
              tags: [lake]
              summary: Refresh the subject index now
              description: "Roles: admin."
              operationId: index
              requestBody:
                required: false
                content:
                  application/json:
                    schema:
                      type: object
                      additionalProperties: false
                      properties:
                        datasets:
                          type: array
                          items: {type: string}
              responses:
                '200':
                  description: The index report
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/IndexReport'}
                '400': {$ref: '#/components/responses/BadRequest'}
                '401': {$ref: '#/components/responses/Unauthorized'}
                '403': {$ref: '#/components/responses/Forbidden'}
                '413': {$ref: '#/components/responses/TooLarge'}
          /v1/keys:
            get:
              tags: [service]
              summary: The installation's public keys (certificates of erasure are signed with Ed25519)
              operationId: keys
              security: []
              responses:
                '200':
                  description: The public keys, as `lethe certificate key --json` prints each
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [keys]
                        additionalProperties: false
                        properties:
                          keys:
                            type: array
                            items:
                              type: object
                              required: [alg, public_key, key_fingerprint]
                              additionalProperties: false
                              properties:
                                alg: {type: string, enum: [Ed25519]}
                                public_key: {type: string, description: "32 bytes, base64"}
                                key_fingerprint: {type: string, description: "hex of the first 16 bytes of the key's SHA-256"}
                '503':
                  description: The state was opened without its signing key
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/Error'}
          /healthz:
            get:
              tags: [service]
              summary: Alive
              operationId: healthz
              security: []
              responses:
                '200':
                  description: The process answers
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/Status200'}
          /readyz:
            get:
              tags: [service]
              summary: Ready (the state store and the lake answer)
              operationId: readyz
              security: []
              responses:
                '200':
                  description: Ready
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/Status200'}
                '503':
                  description: The state store or the lake does not answer
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/Error'}
          /metrics:
            get:
              tags: [service]
              summary: Prometheus metrics (text exposition format), every name prefixed lethe_
              operationId: metrics
              security: []
              responses:
                '200':
                  description: The metrics
                  content:
                    text/plain:
                      schema: {type: string}
          /openapi.yaml:
            get:
              tags: [service]
              summary: This document
              operationId: openapi
              security: []
              responses:
                '200':
                  description: OpenAPI 3.1
                  content:
                    application/yaml:
                      schema: {type: string}
        components:
          securitySchemes:
            bearer:
              type: http
              scheme: bearer
              description: "A token from `lethe token create --name N --role R` (roles: requester, approver, auditor, stream, admin), or with `serve.oidc` a JWT of the configured OpenID Connect provider whose role claim names those roles."
          parameters:
            RequestID:
              name: id
              in: path
              required: true
              schema: {type: string, minLength: 1}
          responses:
            BadRequest:
              description: "Bad input: malformed JSON, a missing or unknown field, a bad parameter or cursor (code bad_request)"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/Error'}
            Unauthorized:
              description: "No token, an unknown or revoked one, or a JWT that fails a check: signature, key, issuer, audience, expiry (code unauthorized; WWW-Authenticate: Bearer error=\"invalid_token\" for a JWT)"
              headers:
                WWW-Authenticate:
                  schema: {type: string}
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/Error'}
            Forbidden:
              description: "The token's role may not call this route, or a JWT's role claim names no Lethe role (code forbidden)"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/Error'}
            NotFound:
              description: "No such request (code not_found)"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/Error'}
            Conflict:
              description: "The request is not in a state that allows this (code conflict), or whoever filed it tries to approve it (code four_eyes)"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/Error'}
            TooLarge:
              description: "The body is larger than the service accepts (code payload_too_large)"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/Error'}
            Unprocessable:
              description: "A subject field no dataset has (unknown_subject_field), a subject that fits no dataset (subject_mismatch), or data Lethe cannot erase (unsupported)"
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/Error'}
          schemas:
            Error:
              type: object
              required: [error]
              additionalProperties: false
              properties:
                error:
                  type: object
                  required: [code, message]
                  additionalProperties: false
                  properties:
                    code: {type: string}
                    message: {type: string}
            Status200:
              type: object
              required: [status]
              properties:
                status: {type: string}
            Status:
              type: string
              enum: [filed, planned, approved, rejected, running, erased, verified, failed]
            Subject:
              description: |
                A string (one id, exactly as written), an array of a composite subject's parts (each a string or
                {"hex": …}), {"hex": "75ff31"} (an id's bytes), or {"fields": {"tenant": "t1", "user_id": "u-1"}}
                naming a dataset's subject fields.
              oneOf:
                - {type: string, minLength: 1}
                - type: array
                  minItems: 1
                  items:
                    oneOf:
                      - {type: string, minLength: 1}
                      - {$ref: '#/components/schemas/HexBytes'}
                - {$ref: '#/components/schemas/HexBytes'}
                - type: object
                  required: [fields]
                  additionalProperties: false
                  properties:
                    fields:
                      type: object
                      minProperties: 1
                      additionalProperties:
                        oneOf:
                          - {type: string, minLength: 1}
                          - {$ref: '#/components/schemas/HexBytes'}
            HexBytes:
              type: object
              required: [hex]
              additionalProperties: false
              properties:
                hex: {type: string, pattern: '^([0-9a-fA-F]{2})+$'}
            FileRequests:
              type: object
              required: [subjects]
              additionalProperties: false
              properties:
                subjects:
                  type: array
                  minItems: 1
                  maxItems: 10000
                  items: {$ref: '#/components/schemas/Subject'}
                reason:
                  type: string
                  description: Why (e.g. a ticket number); must not hold the subject's id. Default "erasure request".
            Proofs:
              type: object
              required: [verified, swept, raw_id, raw_id_due_at, raw_destroyed_at, raw_destroyed_why]
              additionalProperties: false
              properties:
                verified:
                  oneOf:
                    - type: 'null'
                    - type: object
                      required: [at, kind]
                      additionalProperties: false
                      properties:
                        at: {type: integer}
                        kind: {type: string}
                swept:
                  oneOf:
                    - type: 'null'
                    - type: object
                      required: [at]
                      additionalProperties: false
                      properties:
                        at: {type: integer}
                raw_id: {type: string, enum: [sealed, destroyed]}
                raw_id_due_at: {type: [integer, 'null']}
                raw_destroyed_at: {type: [integer, 'null']}
                raw_destroyed_why: {type: [string, 'null']}
            Request:
              description: A request as `lethe forget/approve/reject --json` print it (times in ms since the epoch; the subject as its keyed hash)
              type: object
              required: [id, subject_key, status, reason, requested_by, filed_at, updated_at, attempts, decided_by, failure, stream_tag, forgotten, proofs]
              additionalProperties: false
              properties:
                id: {type: string}
                subject_key: {type: string}
                status: {$ref: '#/components/schemas/Status'}
                reason: {type: string}
                requested_by: {type: string}
                filed_at: {type: integer}
                updated_at: {type: integer}
                attempts: {type: integer}
                decided_by: {type: [string, 'null']}
                failure: {type: [string, 'null']}
                stream_tag: {type: [string, 'null']}
                forgotten: {type: boolean}
                objects: {type: integer, description: "The plan's objects (absent without a plan)"}
                rows: {type: integer, description: "The plan's rows (absent without a plan)"}
                proofs: {$ref: '#/components/schemas/Proofs'}
            RequestDetail:
              description: A request with its plan and verification, as `lethe show --json` prints it
              type: object
              required: [id, subject_key, status, reason, requested_by, filed_at, updated_at, attempts, decided_by, failure, stream_tag, forgotten, proofs, plan, verification]
              additionalProperties: false
              properties:
                id: {type: string}
                subject_key: {type: string}
                status: {$ref: '#/components/schemas/Status'}
                reason: {type: string}
                requested_by: {type: string}
                filed_at: {type: integer}
                updated_at: {type: integer}
                attempts: {type: integer}
                decided_by: {type: [string, 'null']}
                failure: {type: [string, 'null']}
                stream_tag: {type: [string, 'null']}
                forgotten: {type: boolean}
                proofs: {$ref: '#/components/schemas/Proofs'}
                plan: {description: "The plan: datasets, objects and rows, lineage (null without one)"}
                verification: {description: "The last verification (null without one)"}
            RequestList:
              type: object
              required: [requests]
              additionalProperties: false
              properties:
                requests:
                  type: array
                  items: {$ref: '#/components/schemas/Request'}
            RequestPage:
              type: object
              required: [requests, next_cursor]
              additionalProperties: false
              properties:
                requests:
                  type: array
                  items: {$ref: '#/components/schemas/Request'}
                next_cursor: {type: [string, 'null']}
            LocateReport:
              type: array
              items:
                type: object
                required: [dataset, object, role, rows, positions]
                additionalProperties: false
                properties:
                  dataset: {type: string}
                  object: {type: string}
                  role: {type: string, enum: [live, history, cdc]}
                  rows: {type: integer}
                  positions:
                    type: array
                    maxItems: 1000
                    items: {type: integer}
            AuditEntry:
              type: object
              required: [seq, at, event, request, actor, details, prev_hash, hash]
              additionalProperties: false
              properties:
                seq: {type: integer}
                at: {type: integer}
                event: {type: string}
                request: {type: [string, 'null']}
                actor: {type: [string, 'null']}
                details: {description: "The entry's details (JSON; texts resolved, or [erased])"}
                prev_hash: {type: string}
                hash: {type: string}
            Deletions:
              type: object
              required: [added, removed, latest, since]
              additionalProperties: false
              properties:
                added:
                  type: array
                  items: {type: string, pattern: '^[0-9a-f]{16}$'}
                removed:
                  type: array
                  items: {type: string, pattern: '^[0-9a-f]{16}$'}
                latest: {type: integer}
                since: {type: integer}
            Certificate:
              type: object
              required: [certificate, signature]
              additionalProperties: false
              properties:
                certificate:
                  type: object
                  required: [format, request_id, subject_key]
                  description: What was erased, where, when, how it was verified, the audit head (see docs/serve-state.md)
                  properties:
                    format: {type: string}
                    request_id: {type: string}
                    subject_key: {type: string}
                signature:
                  type: object
                  required: [alg, key_fingerprint, value]
                  additionalProperties: false
                  properties:
                    alg: {type: string, enum: [Ed25519]}
                    key_fingerprint: {type: string}
                    value: {type: string}
            IndexReport:
              type: object
              required: [datasets, objects_seen, objects_scanned, objects_unchanged, objects_removed, records, bytes, seconds, quarantined, dataset_issues]
              properties:
                datasets:
                  type: array
                  items: {type: string}
                objects_seen: {type: integer}
                objects_scanned: {type: integer}
                objects_unchanged: {type: integer}
                objects_removed: {type: integer}
                records: {type: integer}
                bytes: {type: integer}
                seconds: {type: number}
                quarantined: {type: array}
                dataset_issues: {type: array}
        """#
}
