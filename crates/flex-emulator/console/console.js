// The agent console of the Flex emulator.
//
// A person plays a Flex agent: picks one (remembered in localStorage), sees
// reservations arrive live, accepts or rejects them, chats with the customer,
// ends the chat, completes the task, and switches between available and
// unavailable. Everything goes through the emulator's control API
// (docs/architecture.md §3.4); the page never reloads.
//
// Data flow: the Server-Sent Events stream (/_emulator/events) only says
// "something changed" (any event type counts, filtered to the chosen agent
// when the event says whom it is about); the console then refetches the
// agent list and the chosen agent's view (debounced) and renders from that.
// The agent view is the single source of truth, so a missed event costs
// nothing: every (re)connect and every action refetches too.
//
// Safety: customer names and messages are untrusted. Every piece of data
// reaches the page through textContent or attribute setters, never innerHTML.
'use strict';

(() => {
  const STORAGE_KEY = 'flex-emulator.console.agent';
  /** Events arriving within this window are folded into one refetch. */
  const REFRESH_COALESCE_MS = 100;
  /** At most one typing ping per task in this interval. */
  const TYPING_INTERVAL_MS = 3000;
  const RECONNECT_MIN_MS = 1000;
  const RECONNECT_MAX_MS = 15000;
  const NOTICE_MS = 10000;
  /** Event types that never change an agent view (docs/architecture.md §3.4). */
  const IGNORED_EVENTS = new Set(['webhook.delivery', 'typing']);
  /** The layout of console.css below 760 px: task list above the chat. */
  const ONE_COLUMN = window.matchMedia('(max-width: 759px)');
  const PAGE_TITLE = document.title;
  const STATUS_LABELS = {
    pending: 'Incoming',
    assigned: 'Active',
    wrapping: 'Wrapping up',
    completed: 'Completed',
    canceled: 'Canceled',
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    picker: $('agent-picker'),
    availability: $('availability-toggle'),
    connection: $('connection-status'),
    notice: $('notice'),
    tasksEmpty: $('tasks-empty'),
    reservations: $('reservation-list'),
    chatTitle: $('chat-title'),
    chatMeta: $('chat-meta'),
    chatDetails: $('chat-details'),
    customerLeft: $('customer-left'),
    chatStatus: $('chat-status'),
    end: $('end-button'),
    complete: $('complete-button'),
    messages: $('message-list'),
    composer: $('composer'),
    input: $('composer-input'),
    send: $('send-button'),
    attach: $('attach-button'),
    attachInput: $('attach-input'),
  };

  const state = {
    /** GET /_emulator/agents, or null before the first answer. */
    agents: null,
    /** SID of the chosen agent; its name is kept in localStorage too. */
    agentSid: null,
    /** GET /_emulator/agents/{agentSid}: `{agent, work: [...]}`. */
    view: null,
    /** WT… of the task shown in the chat pane. */
    selectedTask: null,
    /** Keys of actions in flight (`accept:WR…`), so a double click does nothing. */
    busy: new Set(),
    /** Unsent text per task, kept while switching between tasks. */
    drafts: new Map(),
    /** Last typing ping per task (ms since epoch). */
    typingSentAt: new Map(),
    /** What the message list currently shows, to skip needless rebuilds. */
    renderedMessagesKey: '',
    /** The task whose messages are shown: a switch scrolls to the newest message. */
    renderedTask: null,
    /** Reservation list items by reservation SID, updated in place (keeps focus). */
    items: new Map(),
  };

  // ---- control API ------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const init = { method, headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(`the emulator is unreachable (${err.message})`, 0);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!response.ok) {
      const detail = data && typeof data === 'object' && typeof data.message === 'string' ? data.message : text;
      throw new ApiError(`${response.status} ${detail || response.statusText}`.trim(), response.status);
    }
    return data;
  }

  const seg = encodeURIComponent;
  const agentPath = (suffix = '') => `/_emulator/agents/${seg(state.agentSid)}${suffix}`;

  // ---- reading the agent view --------------------------------------------

  const workItems = () => (state.view && Array.isArray(state.view.work) ? state.view.work : []);
  const taskSidOf = (item) => (item.task && item.task.sid) || null;
  const reservationSidOf = (item) => (item.reservation && item.reservation.sid) || null;
  const selectedItem = () => workItems().find((item) => taskSidOf(item) === state.selectedTask) || null;

  /** One status for a work item, from the reservation and the task together. */
  function statusOf(item) {
    const reservation = item.reservation ? item.reservation.reservation_status : undefined;
    const task = item.task ? item.task.assignment_status : undefined;
    if (reservation === 'pending') return 'pending';
    if (task === 'wrapping' || reservation === 'wrapping') return 'wrapping';
    if (task === 'completed' || reservation === 'completed') return 'completed';
    if (task === 'canceled' || ['rejected', 'timeout', 'canceled', 'rescinded'].includes(reservation)) return 'canceled';
    if (task === 'assigned' && reservation === 'accepted') return 'assigned';
    return task || reservation || 'unknown';
  }

  function customerNameOf(item) {
    const customer = item.customer || {};
    return customer.name || customer.identity || 'Customer';
  }

  function parseAttributes(task) {
    if (!task || typeof task.attributes !== 'string') return {};
    try {
      const parsed = JSON.parse(task.attributes);
      return parsed && typeof parsed === 'object' ? parsed : {};
    } catch {
      return {};
    }
  }

  /** Chat messages carry their author as `from`, conversations messages as `author`. */
  const authorOf = (message) => message.author ?? message.from ?? '';

  function roleOf(message, item) {
    const author = authorOf(message);
    const agent = state.view && state.view.agent;
    if (author && agent && (author === agent.identity || author === agent.name)) return 'agent';
    if (author && item.customer && author === item.customer.identity) return 'customer';
    return 'other';
  }

  // ---- refreshing ----------------------------------------------------------

  let refreshTimer = null;
  let refreshSeq = 0;

  /** Coalesces bursts of events into one refetch shortly after the first. */
  function scheduleRefresh() {
    if (refreshTimer !== null) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      refresh();
    }, REFRESH_COALESCE_MS);
  }

  async function refresh() {
    const seq = ++refreshSeq;
    const agentSid = state.agentSid;
    try {
      const [agents, view] = await Promise.all([
        api('GET', '/_emulator/agents'),
        agentSid ? api('GET', agentPath()) : Promise.resolve(null),
      ]);
      // A later refresh has started: its answer is the fresher one.
      if (seq !== refreshSeq) return;
      state.agents = Array.isArray(agents) ? agents : [];
      if (agentSid && agentSid === state.agentSid) state.view = view;
      if (!agentSid) restoreAgent();
      render();
    } catch (err) {
      if (seq !== refreshSeq) return;
      if (err.status === 404 && agentSid && agentSid === state.agentSid) {
        // The emulator restarted with other agents: forget the choice.
        chooseAgent(null);
        showNotice('That agent no longer exists; choose another one.');
        return;
      }
      showNotice(`Could not load the agent view: ${err.message}`);
    }
  }

  /** An event field may name a resource by SID or carry its JSON. */
  const sidIn = (value) => (typeof value === 'string' ? value : value && typeof value === 'object' ? value.sid : undefined);

  /**
   * Is this event about the chosen agent or one of its tasks? Events about
   * agents in general (availability, load: the picker shows them), resets,
   * and events naming nothing we know how to filter on all count.
   */
  function isRelevant(type, data) {
    if (IGNORED_EVENTS.has(type) || type.startsWith('studio_execution.')) return false;
    if (type.startsWith('agent') || type.includes('reset') || !data || typeof data !== 'object') return true;
    if (!state.agentSid) return false;
    const agentField = data.agent;
    const agentSid = sidIn(agentField);
    const agentName = agentField && typeof agentField === 'object' ? agentField.name : agentField;
    const ours = state.view && state.view.agent;
    if (agentSid === state.agentSid || (ours && agentName === ours.name)) return true;
    const items = workItems();
    const task = sidIn(data.task);
    const reservation = sidIn(data.reservation);
    const channel = data.channel_sid || data.conversation_sid || sidIn(data.channel) || sidIn(data.conversation);
    if (task && items.some((item) => taskSidOf(item) === task)) return true;
    if (reservation && items.some((item) => reservationSidOf(item) === reservation)) return true;
    if (channel && items.some((item) => item.channel_sid === channel)) return true;
    // A reservation for another agent, or a message in someone else's chat.
    return !agentField && !task && !reservation && !channel;
  }

  // ---- the event stream ------------------------------------------------------
  //
  // Read with fetch rather than EventSource: EventSource only hands over the
  // event types one subscribed to by name, and the console must react to every
  // type the emulator has, including ones added after this file was written.

  let reconnectDelay = RECONNECT_MIN_MS;

  async function streamEvents() {
    setConnection('connecting', 'Connecting to the event stream…');
    try {
      const response = await fetch('/_emulator/events', {
        headers: { Accept: 'text/event-stream' },
        cache: 'no-store',
      });
      const type = response.headers.get('content-type') || '';
      if (!response.ok || !type.startsWith('text/event-stream') || !response.body) {
        throw new Error(`the emulator answered ${response.status} ${type}`);
      }
      reconnectDelay = RECONNECT_MIN_MS;
      setConnection('open', 'Live');
      // Whatever happened while we were away is in the view.
      scheduleRefresh();
      await readEvents(response.body, onServerEvent);
    } catch {
      // Reported below; the stream is down either way.
    }
    const seconds = Math.round(reconnectDelay / 1000);
    setConnection('down', `Event stream down: retrying in ${seconds} s. Changes are not live.`);
    setTimeout(streamEvents, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
  }

  /** Parses a text/event-stream body (the WHATWG format) until it ends. */
  async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let type = '';
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        if (line === '') {
          if (data.length) onEvent(type || 'message', data.join('\n'));
          type = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue; // a comment: keep-alive
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const fieldValue = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') type = fieldValue;
        else if (field === 'data') data.push(fieldValue);
      }
    }
  }

  function onServerEvent(type, text) {
    let data = null;
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
    if (isRelevant(type, data)) scheduleRefresh();
  }

  function setConnection(kind, text) {
    ui.connection.dataset.state = kind;
    ui.connection.textContent = text;
  }

  // ---- notices -----------------------------------------------------------------

  let noticeTimer = null;

  function showNotice(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(clearNotice, NOTICE_MS);
  }

  function clearNotice() {
    ui.notice.hidden = true;
    ui.notice.textContent = '';
  }

  // ---- choosing an agent ----------------------------------------------------------

  function rememberedAgent() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null');
      return saved && typeof saved === 'object' ? saved : null;
    } catch {
      return null;
    }
  }

  /** After the first agent list: pick the remembered agent, by SID, else by name. */
  function restoreAgent() {
    const saved = rememberedAgent();
    if (!saved || !state.agents) return;
    const agent =
      state.agents.find((a) => a.sid === saved.sid) || state.agents.find((a) => a.name === saved.name);
    if (agent) chooseAgent(agent.sid);
  }

  function chooseAgent(sid) {
    if (sid === state.agentSid) return;
    saveDraft();
    state.agentSid = sid || null;
    state.view = null;
    state.selectedTask = null;
    state.items.clear();
    ui.reservations.replaceChildren();
    state.renderedMessagesKey = '';
    const agent = sid && state.agents ? state.agents.find((a) => a.sid === sid) : null;
    try {
      if (agent) localStorage.setItem(STORAGE_KEY, JSON.stringify({ sid: agent.sid, name: agent.name }));
      else if (!sid) localStorage.removeItem(STORAGE_KEY);
    } catch {
      // Storage may be disabled; the choice then lasts for this page only.
    }
    render();
    if (state.agentSid) scheduleRefresh();
  }

  // ---- actions ----------------------------------------------------------------------

  /** Runs one control-API action once at a time per key, then refetches. */
  async function act(key, work) {
    if (state.busy.has(key)) return undefined;
    state.busy.add(key);
    render();
    try {
      const result = await work();
      clearNotice();
      return result;
    } catch (err) {
      showNotice(`Could not ${key.split(':')[0]}: ${err.message}`);
      return undefined;
    } finally {
      state.busy.delete(key);
      render();
      scheduleRefresh();
    }
  }

  function accept(item) {
    const reservation = reservationSidOf(item);
    selectTask(taskSidOf(item));
    return act(`accept:${reservation}`, () =>
      api('POST', agentPath(`/reservations/${seg(reservation)}/accept`)),
    );
  }

  function reject(item) {
    const reservation = reservationSidOf(item);
    return act(`reject:${reservation}`, () =>
      api('POST', agentPath(`/reservations/${seg(reservation)}/reject`)),
    );
  }

  function endChat(item) {
    const task = taskSidOf(item);
    return act(`end the chat:${task}`, () => api('POST', agentPath(`/tasks/${seg(task)}/end`)));
  }

  function completeTask(item) {
    const task = taskSidOf(item);
    return act(`complete:${task}`, () => api('POST', agentPath(`/tasks/${seg(task)}/complete`)));
  }

  function toggleAvailability() {
    const agent = state.view && state.view.agent;
    if (!agent) return undefined;
    return act(`change availability:${agent.sid}`, () =>
      api('POST', agentPath('/activity'), { available: !agent.available }),
    );
  }

  async function sendReply() {
    const item = selectedItem();
    if (!item || statusOf(item) !== 'assigned') return;
    const body = ui.input.value.trim();
    if (!body) return;
    const task = taskSidOf(item);
    // Read-only while sending: the text stays if the send fails, and is not edited meanwhile.
    ui.input.readOnly = true;
    const sent = await act(`send:${task}`, () =>
      api('POST', agentPath(`/tasks/${seg(task)}/messages`), { body }),
    );
    ui.input.readOnly = false;
    if (sent !== undefined) {
      ui.input.value = '';
      state.drafts.delete(task);
    }
    ui.input.focus();
  }

  function typingPing() {
    const item = selectedItem();
    if (!item || statusOf(item) !== 'assigned') return;
    const task = taskSidOf(item);
    const now = Date.now();
    if (now - (state.typingSentAt.get(task) || 0) < TYPING_INTERVAL_MS) return;
    state.typingSentAt.set(task, now);
    // Best effort: a lost typing indicator is not worth a notice.
    api('POST', agentPath(`/tasks/${seg(task)}/typing`)).catch(() => {});
  }

  function saveDraft() {
    if (state.selectedTask && !ui.input.disabled) state.drafts.set(state.selectedTask, ui.input.value);
  }

  function selectTask(taskSid) {
    if (taskSid !== state.selectedTask) {
      saveDraft();
      state.selectedTask = taskSid;
      ui.input.value = state.drafts.get(taskSid) || '';
      render();
    }
    // On a phone the chat sits below the task list: bring it into view.
    if (ONE_COLUMN.matches) ui.chatTitle.scrollIntoView({ block: 'start', behavior: 'smooth' });
  }

  // ---- rendering ------------------------------------------------------------------------

  function render() {
    renderAgents();
    renderTasks();
    renderChat();
  }

  function agentLabel(agent) {
    const availability = agent.available ? 'available' : 'unavailable';
    const load = Number.isFinite(agent.load) && Number.isFinite(agent.capacity) ? ` · ${agent.load}/${agent.capacity}` : '';
    return `${agent.name || agent.identity || agent.sid} · ${availability}${load}`;
  }

  function renderAgents() {
    const picker = ui.picker;
    if (!state.agents) return;
    const wanted = [['', 'Choose an agent…'], ...state.agents.map((a) => [a.sid, agentLabel(a)])];
    const same =
      picker.options.length === wanted.length &&
      wanted.every(([value, label], i) => picker.options[i].value === value && picker.options[i].text === label);
    if (!same) {
      picker.replaceChildren(
        ...wanted.map(([value, label]) => {
          const option = document.createElement('option');
          option.value = value;
          option.textContent = label;
          return option;
        }),
      );
    }
    picker.value = state.agentSid || '';
    picker.disabled = false;

    const agent = state.view && state.view.agent;
    ui.availability.disabled = !agent || state.busy.has(`change availability:${agent.sid}`);
    ui.availability.setAttribute('aria-pressed', agent && agent.available ? 'true' : 'false');
    ui.availability.textContent = agent ? (agent.available ? 'Available' : 'Unavailable') : 'Available';
    ui.availability.title = agent
      ? `${agent.name} is ${agent.available ? 'available' : 'unavailable'}; click to switch`
      : 'Choose an agent first';
  }

  function renderTasks() {
    const items = workItems();
    if (!state.agentSid) {
      ui.tasksEmpty.textContent = 'Choose an agent to see their tasks.';
    } else if (!state.view) {
      ui.tasksEmpty.textContent = 'Loading…';
    } else {
      ui.tasksEmpty.textContent = 'No tasks yet. New reservations appear here.';
    }
    ui.tasksEmpty.hidden = items.length > 0;
    const incoming = items.filter((item) => statusOf(item) === 'pending').length;
    document.title = incoming ? `(${incoming}) ${PAGE_TITLE}` : PAGE_TITLE;

    // Keep the selection on a task that still exists, else pick the most useful one.
    if (!items.some((item) => taskSidOf(item) === state.selectedTask)) {
      const pick =
        items.find((item) => statusOf(item) === 'assigned') ||
        items.find((item) => statusOf(item) === 'pending') ||
        items[0];
      state.selectedTask = pick ? taskSidOf(pick) : null;
      ui.input.value = (pick && state.drafts.get(taskSidOf(pick))) || '';
    }

    const seen = new Set();
    items.forEach((item, index) => {
      const key = reservationSidOf(item) || taskSidOf(item);
      seen.add(key);
      let li = state.items.get(key);
      if (!li) {
        li = createReservationItem();
        state.items.set(key, li);
      }
      updateReservationItem(li, item);
      if (ui.reservations.children[index] !== li) ui.reservations.insertBefore(li, ui.reservations.children[index] || null);
    });
    for (const [key, li] of state.items) {
      if (!seen.has(key)) {
        li.remove();
        state.items.delete(key);
      }
    }
  }

  /** The parts of each reservation list item, to update them in place. */
  const itemParts = new WeakMap();

  function createReservationItem() {
    const li = document.createElement('li');
    li.className = 'reservation';
    li.dataset.testid = 'reservation-item';
    li.tabIndex = 0;
    const name = document.createElement('div');
    name.className = 'reservation-name';
    const meta = document.createElement('div');
    meta.className = 'reservation-meta';
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.dataset.testid = 'reservation-status';
    const actions = document.createElement('div');
    actions.className = 'reservation-actions';
    const acceptButton = document.createElement('button');
    acceptButton.type = 'button';
    acceptButton.className = 'btn btn-accept';
    acceptButton.dataset.testid = 'accept-button';
    acceptButton.textContent = 'Accept';
    const rejectButton = document.createElement('button');
    rejectButton.type = 'button';
    rejectButton.className = 'btn';
    rejectButton.dataset.testid = 'reject-button';
    rejectButton.textContent = 'Reject';
    actions.append(acceptButton, rejectButton);
    const header = document.createElement('div');
    header.append(badge);
    li.append(name, header, meta, actions);
    itemParts.set(li, { name, meta, badge, actions, acceptButton, rejectButton });

    const itemOf = () => workItems().find((item) => (reservationSidOf(item) || taskSidOf(item)) === li.dataset.key);
    acceptButton.addEventListener('click', (event) => {
      event.stopPropagation();
      const item = itemOf();
      if (item) accept(item);
    });
    rejectButton.addEventListener('click', (event) => {
      event.stopPropagation();
      const item = itemOf();
      if (item) reject(item);
    });
    li.addEventListener('click', () => {
      const item = itemOf();
      if (item) selectTask(taskSidOf(item));
    });
    li.addEventListener('keydown', (event) => {
      if (event.target !== li || (event.key !== 'Enter' && event.key !== ' ')) return;
      event.preventDefault();
      const item = itemOf();
      if (item) selectTask(taskSidOf(item));
    });
    return li;
  }

  function updateReservationItem(li, item) {
    const status = statusOf(item);
    const reservation = reservationSidOf(item);
    const task = taskSidOf(item);
    li.dataset.key = reservation || task;
    li.dataset.reservationSid = reservation || '';
    li.dataset.taskSid = task || '';
    li.dataset.status = status;
    li.setAttribute('aria-current', task === state.selectedTask ? 'true' : 'false');
    const { name, meta, badge, actions, acceptButton, rejectButton } = itemParts.get(li);
    name.textContent = customerNameOf(item);
    badge.textContent = STATUS_LABELS[status] || status;
    badge.dataset.status = status;
    const attributes = parseAttributes(item.task);
    const channelType = typeof attributes.channelType === 'string' ? attributes.channelType : null;
    meta.textContent = [item.backend, channelType, task].filter(Boolean).join(' · ');
    actions.hidden = status !== 'pending';
    acceptButton.disabled = state.busy.has(`accept:${reservation}`) || state.busy.has(`reject:${reservation}`);
    rejectButton.disabled = acceptButton.disabled;
  }

  function renderChat() {
    const item = selectedItem();
    const status = item ? statusOf(item) : null;
    const task = item ? taskSidOf(item) : null;

    ui.chatTitle.textContent = item ? customerNameOf(item) : 'No task selected';
    ui.chatMeta.textContent = item
      ? [item.customer && item.customer.identity, item.backend, item.channel_sid].filter(Boolean).join(' · ')
      : '';
    renderDetails(item);
    ui.customerLeft.hidden = !(item && item.ended_by === 'customer');
    ui.chatStatus.hidden = !item;
    ui.chatStatus.textContent = item ? STATUS_LABELS[status] || status : '';
    ui.chatStatus.dataset.status = status || '';

    ui.end.hidden = status !== 'assigned';
    ui.end.disabled = !task || state.busy.has(`end the chat:${task}`);
    ui.complete.hidden = status !== 'wrapping';
    ui.complete.disabled = !task || state.busy.has(`complete:${task}`);

    const canReply = status === 'assigned';
    ui.input.disabled = !canReply;
    ui.send.disabled = !canReply || state.busy.has(`send:${task}`);
    ui.attach.disabled = ui.send.disabled;
    ui.input.placeholder = !item
      ? 'Accept a task to reply'
      : status === 'pending'
        ? 'Accept the task to reply'
        : canReply
          ? `Reply to ${customerNameOf(item)}`
          : 'This chat has ended';

    renderMessages(item);
  }

  /**
   * What the customer told before the chat (the task's `email` and
   * `pre_engagement_data`, as Flex's web chat sets them), as a term list.
   * Text only (`textContent`): it is the customer's.
   */
  function renderDetails(item) {
    const attributes = item ? parseAttributes(item.task) : {};
    const data = attributes.pre_engagement_data && typeof attributes.pre_engagement_data === 'object'
      ? attributes.pre_engagement_data
      : {};
    const rows = [];
    const seen = new Set();
    const add = (key, value) => {
      if (seen.has(key) || value == null || value === '' || typeof value === 'object') return;
      seen.add(key);
      rows.push([key, String(value)]);
    };
    add('email', attributes.email);
    for (const [key, value] of Object.entries(data)) {
      if (key !== 'friendlyName') add(key, value);
    }
    const key = JSON.stringify(rows);
    if (ui.chatDetails.dataset.key === key) return;
    ui.chatDetails.dataset.key = key;
    ui.chatDetails.replaceChildren(
      ...rows.flatMap(([name, value]) => {
        const dt = document.createElement('dt');
        dt.textContent = name;
        const dd = document.createElement('dd');
        dd.textContent = value;
        dd.dataset.testid = `detail-${name}`;
        return [dt, dd];
      }),
    );
    ui.chatDetails.hidden = rows.length === 0;
  }

  function renderMessages(item) {
    const messages = item && Array.isArray(item.messages) ? item.messages : [];
    const agent = state.view && state.view.agent;
    const key = JSON.stringify([
      item ? taskSidOf(item) : null,
      agent ? agent.identity : null,
      messages.map((m) => [m.sid, m.index, m.body, Boolean(m.media)]),
    ]);
    if (key === state.renderedMessagesKey) return;
    const task = item ? taskSidOf(item) : null;
    const sameTask = task === state.renderedTask;
    state.renderedMessagesKey = key;
    state.renderedTask = task;

    const list = ui.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    list.replaceChildren(...messages.map((message) => renderMessage(message, item)));
    if (!sameTask || atBottom) list.scrollTop = list.scrollHeight;
  }

  function renderMessage(message, item) {
    const role = roleOf(message, item);
    const li = document.createElement('li');
    li.className = 'message';
    li.dataset.testid = 'message';
    li.dataset.role = role;
    if (message.sid) li.dataset.sid = message.sid;

    const head = document.createElement('div');
    head.className = 'message-author';
    const author = authorOf(message);
    head.textContent =
      role === 'agent' ? `You (${author})` : role === 'customer' ? customerNameOf(item) : author || 'system';
    const time = formatTime(message.date_created);
    if (time) {
      const timeEl = document.createElement('time');
      timeEl.className = 'message-time';
      timeEl.dateTime = message.date_created;
      timeEl.textContent = time;
      head.append(timeEl);
    }

    const body = document.createElement('div');
    body.className = 'message-body';
    body.dataset.testid = 'message-body';
    body.textContent = message.body ?? '';

    li.append(head, body);
    // A file: Chat's `media` is one object, Conversations' an array.
    const media = Array.isArray(message.media) ? message.media[0] : message.media;
    if (media && typeof media.sid === 'string') li.append(renderMedia(media));
    return li;
  }

  /** A message's file: a thumbnail for an image, and a download link (control API). */
  function renderMedia(media) {
    const box = document.createElement('div');
    box.className = 'message-media';
    box.dataset.testid = 'message-media';
    const href = `/_emulator/media/${encodeURIComponent(media.sid)}`;
    const type = String(media.content_type ?? '');
    if (['image/png', 'image/jpeg', 'image/gif', 'image/webp'].includes(type)) {
      const img = document.createElement('img');
      img.src = href;
      img.alt = media.filename || 'image';
      img.className = 'message-thumb';
      img.dataset.testid = 'message-image';
      box.append(img);
    }
    const link = document.createElement('a');
    link.href = href;
    link.download = media.filename || 'file';
    link.textContent = `${media.filename || 'file'} (${type}, ${media.size ?? '?'} bytes)`;
    link.dataset.testid = 'message-file';
    box.append(link);
    return box;
  }

  /** Sends the chosen file as the agent's message (base64 over the control API). */
  async function sendFile(file) {
    const item = selectedItem();
    if (!item || statusOf(item) !== 'assigned' || !file) return;
    const task = taskSidOf(item);
    const data = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
    const media = { filename: file.name, content_type: file.type || 'application/octet-stream', content_base64: data };
    await act(`send:${task}`, () => api('POST', agentPath(`/tasks/${seg(task)}/messages`), { media }));
  }

  function formatTime(value) {
    if (typeof value !== 'string') return '';
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  // ---- wiring ---------------------------------------------------------------------------

  ui.picker.addEventListener('change', () => chooseAgent(ui.picker.value || null));
  ui.availability.addEventListener('click', toggleAvailability);
  ui.end.addEventListener('click', () => {
    const item = selectedItem();
    if (item) endChat(item);
  });
  ui.complete.addEventListener('click', () => {
    const item = selectedItem();
    if (item) completeTask(item);
  });
  ui.composer.addEventListener('submit', (event) => {
    event.preventDefault();
    sendReply();
  });
  ui.input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendReply();
    }
  });
  ui.input.addEventListener('input', typingPing);
  ui.attach.addEventListener('click', () => ui.attachInput.click());
  ui.attachInput.addEventListener('change', () => {
    const file = ui.attachInput.files && ui.attachInput.files[0];
    ui.attachInput.value = '';
    sendFile(file);
  });
  ui.notice.addEventListener('click', clearNotice);

  streamEvents();
  refresh();
})();
