// Package processtest holds the process-level tests of cluster mode (issue 16): three or four
// real gateway binaries in cluster mode on one real redis-server and one real PostgreSQL (free
// loopback ports), with fakewa and fakelaravel as processes, and the faults a cluster must
// survive: a replica SIGKILLed (its sessions connect on the survivors within 15 s + 2 s per 1000
// sessions), SIGSTOPped for twice its lease (it fences itself on resume; WhatsApp sees at most one
// replaced stream per session; Laravel ends with the new holder's writes), a rolling SIGTERM of
// every replica, and scaling 3 -> 4 -> 3. Requests go to any replica, which forwards them to the
// session's holder. It has no non-test code.
package processtest
