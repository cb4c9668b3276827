// Package handoff is the conversation engine: every inbound user message
// passes through Handle, which decides between the knowledge-base bot and a
// person (PRODUCT.md §3), and agent front ends (the desk in DingTalk, a web
// workbench) drive the agents' side through the operations in agent.go.
//
// # Seams
//
// The package owns its contract and imports no storage: it defines its
// records (Conversation, Session, Agent, Line, Unanswered) with typed
// states (Status, Presence, Mode, Reason…), the Store it reads from and the
// Tx its operations run in (store.go, with the lock order), and the Bot it
// asks (Bot). Enqueueing replies and marking the inbound message handled
// are methods of Tx, so that bookkeeping lives behind one interface; the
// gorm implementation (gormstore.HandoffStore) converts its rows at its edge
// and sends the replies a transaction enqueued once it has committed.
// All state lives in the database, so replicas sharing one MySQL database
// and restarts lose nothing; the engine keeps only caches of the config
// snapshot.
//
// A message flows: Handle classifies it (keywords) and, when it may need
// one, matches it against the knowledge base — both pure, outside the
// transaction — then in one Tx locks the user's conversation and either
// applies decide (decide.go: the bot-state decision as a pure function of
// mode, intent, no-answer count and match, table-tested without a database)
// or, while queued or with a person, relays the message; it writes the
// conversation, the transcript, the outbox rows and "handled", and
// commits. The store then hands the replies to the sender.
//
// Every transaction also writes the events agent front ends need
// (events.go: a session assigned, ended or transferred, a group's queue
// changed, a presence, a transcript line of an agent's session) through
// Tx.Publish, so they commit with the change whoever caused it (a user,
// either desk, a timer, another replica) and a refused or rolled back
// operation publishes nothing. The package defines the event record; the
// store writes it where front ends read it (the web workbench's event
// table).
//
// Agent operations return *Error values with a Code for whatever the agent
// should be told (no current session, group closed…); front ends map codes
// to texts in one place, desk.RefusalText (desk.texts; the web workbench
// rewords a few in web.texts). Texts for agents come from desk.texts (and
// web.texts), texts for users from the service rules, routing and bot keys.
//
// # States
//
// Each user of each conversation (adapter.Message.UserKey) is with the bot,
// queued, or with a person. A hand-off opens a session row (who: group and
// agent; why: Reason; when: queued/assigned/ended times); the conversation
// row points at it until it ends. While a session is open the bot is
// silent: messages are relayed to the agent ("#12 张三：…") or, while
// queued, stored with a position reminder at most once a minute (reusing
// queue_moved_message). A transfer, or an agent going offline, ends the
// session and opens a new one, so every session row has one agent.
//
// # Decisions
//
//   - Transfer keywords match when the normalised message contains one ("我
//     要转人工" hands off); end keywords and the hot command must be the
//     whole message ("怎么结束会话" is a question).
//   - A clarify list ("您是不是想问") is neither an answer nor a miss: the
//     no-answer count stays. A direct answer (or a picked entry) resets it.
//     Unsupported message kinds, hot lists and the end keyword leave it.
//   - Numbered lists (clarify and hot questions) are stored on the
//     conversation and valid for the next message only.
//   - Modes: bot_only never hands off and answers misses with its own
//     routing.bot_only_no_answer_reply; human_only hands off every message
//     and ends sessions with human_only_closing_message (no bot to go back
//     to); bot_first without any skill group (a bot-only setup) answers
//     hand-offs with the first service rule's no_agent_message.
//   - When the no-answer limit is reached the hand-off's own text
//     (assigned, queued, off hours, no agent) replaces the no-answer reply.
//     Every hand-off attempt resets the count, so a user left with the bot
//     gets no_answer_limit fresh tries before the next attempt.
//   - An entry with handoff: true is answered first, then handed off
//     (bot_first only; bot_only just answers).
//   - Busy agents do not count as online: if every member is busy or
//     offline the user gets no_agent_message. So does a user queued while
//     nobody else is online (the only agent went offline): they stay
//     queued for the next agent online.
//   - Suggestions (推荐知识) for an agent are the bot's entries scoring at
//     least bot.clarify_threshold, never unrelated entries. The list an
//     agent sees is stored on the session with the msgId it answers (the
//     new-session notice's, then each relayed question's, or Suggest's);
//     SendSuggestion picks only from it, and a question with no
//     suggestions clears it.
//   - A new hand-off never overtakes the queue: the group's queue is
//     drained first and the newcomer is assigned only when nobody waits.
//     Among free online members the user's previous agent comes first,
//     then the least loaded, then the one whose last assignment is oldest.
//   - Queue position notices after users leave the queue: every step for
//     positions 1–10, every tenth position further back (a drain of a long
//     queue would otherwise send O(n²) messages); users timing out at that
//     moment are skipped.
//   - Idle timeout (customer_idle_timeout) counts from the session's last
//     message either way (user message, agent reply) or its assignment, so
//     a user waiting for a slow agent is not closed as idle right after the
//     agent answers. The queue timeout counts from joining the queue. Both
//     are fixed when set: a config change applies to later ones.
//   - The new-session notice names the agent to the user through
//     assigned_message ({agent}); when that text has no {agent}, the
//     agent's first reply starts with desk.texts.first_reply ("客服 <name>
//     为您服务").
//   - Agent-initiated End and Transfer send the agent no notice (the desk
//     shows the returned values); user endings and idle timeouts do.
//   - The transcript is the user's conversation: every inbound message and
//     every message sent to the user, with session, direction, sender and
//     time. Notices to agents are not transcript lines; the outbox keeps
//     them.
//   - TransferToAgent goes to the named agent only: online and under
//     max_chats, or refused (the agent keeps the session); it stays in
//     the session's group when the target is a member, else the target's
//     first group, and ignores service hours (the target is online). Both
//     transfers carry an optional note (转接附言, Session.Note) into the
//     receiver's notice, also when the session queues first.
//   - Accept from the queue (接入) is not an operation: as in 钉小蜜 the
//     queue is served automatically, head first, whenever capacity frees.
//   - Transfer goes to the back of the target group's queue when nobody
//     there is free; an agent going offline puts sessions nobody can take
//     at the front, in the order they were assigned.
//   - Config reloads apply per operation (Config.Current()). A member
//     removed from the config keeps their open sessions until they end
//     (user, timeout, End or Transfer still work) but cannot go online.
//
// # Concurrency and locking
//
// Within a process the wiring never runs Handle twice at once for one user;
// across replicas every operation takes row locks in one order:
// conversations (by key) → skill groups (by name) → sessions → agents
// (see Tx). On MySQL transactions run at READ COMMITTED, so what is read
// after a lock is the latest commit, and missing rows take no gap locks;
// deadlocks and lost insert races are retried whole. SQLite serialises
// writers (BEGIN IMMEDIATE), which gives the same guarantees; there the
// store lets the transactions waiting at one moment share a commit, each
// in its own savepoint, so one that fails rolls back alone.
//
// Capacity: Tx.Assign is a conditional update
// ("open_chats = open_chats + 1 … WHERE presence = 'online' AND
// open_chats < max_chats") evaluated by the database on the latest row
// under its lock, so no interleaving of hand-offs, pulls, groups (an agent
// may serve several) or replicas can pass max_chats; the candidate order
// read before it is only a preference.
//
// Queue: every change to a group's queue (join, pull, leave, timeout,
// transfer) holds the group's row lock (SELECT … FOR UPDATE), which
// serialises the group's hand-offs across replicas and makes positions and
// FIFO order exact. Queue order is Session.QueueSeq, handed out from the
// group's counters (Tx.QueueBack at the back, Tx.QueueFront at the front).
// A pull changes only the queued session, never the user's conversation,
// which keeps the lock order.
//
// Timers: due times are a column of the session row (queue timeout while
// queued, idle timeout while active) with an index; FireDue reads the due
// rows through it (O(due)) and claims each in its own transaction that
// takes the locks above and re-checks the due time, so a replica that lost
// the race, or a message that moved the timer, makes it a no-op: each
// timeout fires once.
//
// After an ending, the session's group is drained in the same transaction;
// the agent's other groups are drained right after commit in their own
// transactions (taking their locks inside would break the order), and
// RunTimers drains all queues now and then in case a process died between
// the two.
package handoff
