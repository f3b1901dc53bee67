// otgate's own script: no inline scripts anywhere (the Content-Security-Policy forbids them).
// The terminal is painted from screen frames the server renders with the same emulator that
// indexes recordings: replay fetches them a window at a time, live view receives them over a
// WebSocket. A frame is either {t, full: {cols, rows, cursor, lines}} or {t, rows: [[i, line]],
// cursor}; a line is [[text, classes], ...].
"use strict";

function paintLine(div, runs) {
  div.textContent = "";
  for (const [text, classes] of runs) {
    const span = document.createElement("span");
    if (classes) span.className = classes;
    span.textContent = text;
    div.appendChild(span);
  }
}

class Screen {
  constructor(element) {
    this.element = element;
    this.lines = Array.from(element.querySelectorAll(".line"));
    this.cursor = document.createElement("div");
    this.cursor.className = "cursor";
    element.appendChild(this.cursor);
  }
  full(frame) {
    for (const line of this.lines) line.remove();
    this.lines = [];
    for (const runs of frame.lines) {
      const div = document.createElement("div");
      div.className = "line";
      paintLine(div, runs);
      this.element.insertBefore(div, this.cursor);
      this.lines.push(div);
    }
    this.element.style.setProperty("--cols", String(frame.cols));
    this.place(frame.cursor);
  }
  rows(rows, cursor) {
    for (const [index, runs] of rows) {
      const div = this.lines[index];
      if (div) paintLine(div, runs);
    }
    this.place(cursor);
  }
  place(cursor) {
    const [row, col, visible] = cursor;
    this.cursor.hidden = !visible;
    this.cursor.style.top = `calc(${row} * var(--line))`;
    this.cursor.style.left = `${col}ch`;
  }
  paint(frame) {
    if (frame.full) this.full(frame.full);
    else if (frame.rows) this.rows(frame.rows, frame.cursor);
  }
}

function clock(t) {
  const minutes = Math.floor(t / 60);
  return `${String(minutes).padStart(2, "0")}:${(t - minutes * 60).toFixed(1).padStart(4, "0")}`;
}

function replay(player) {
  const screen = new Screen(document.getElementById("screen"));
  const id = player.dataset.session;
  const duration = Number(player.dataset.duration) || 0;
  const seek = document.getElementById("seek");
  const play = document.getElementById("play");
  const speed = document.getElementById("speed");
  const time = document.getElementById("clock");
  let frames = [];
  let index = 0;
  let until = 0;
  let last = true;
  let now = Number(player.dataset.at) || 0;
  let playing = false;
  let timer = null;
  let generation = 0;

  const show = () => {
    time.textContent = `${clock(now)} / ${clock(duration)}`;
    seek.value = String(now);
  };
  const load = async (from) => {
    const mine = ++generation;
    const answer = await fetch(`/ui/sessions/${encodeURIComponent(id)}/frames?from=${from}`, {
      credentials: "same-origin",
    });
    if (!answer.ok) throw new Error(`frames: HTTP ${answer.status}`);
    const body = await answer.json();
    if (mine !== generation) return false;
    frames = body.frames;
    until = body.until;
    last = body.last;
    index = 0;
    return true;
  };
  const step = async () => {
    timer = null;
    if (!playing) return;
    if (index >= frames.length) {
      if (last) {
        playing = false;
        now = duration;
        play.textContent = "Play";
        show();
        return;
      }
      if (!(await load(until))) return;
      index = 1; // the first frame is the screen we already show
    }
    const frame = frames[index];
    if (!frame) return;
    const gap = Math.min(Math.max(frame.t - now, 0), 2) / Number(speed.value);
    timer = setTimeout(() => {
      screen.paint(frame);
      now = frame.t;
      index += 1;
      show();
      step();
    }, gap * 1000);
  };
  const jump = async (t) => {
    if (timer) clearTimeout(timer);
    timer = null;
    now = Math.min(Math.max(t, 0), duration);
    show();
    if (await load(now)) {
      screen.paint(frames[0]);
      index = 1;
      if (playing) step();
    }
  };
  play.addEventListener("click", () => {
    playing = !playing;
    play.textContent = playing ? "Pause" : "Play";
    if (playing) {
      if (now >= duration) jump(0);
      else if (frames.length === 0) jump(now);
      else step();
    } else if (timer) {
      clearTimeout(timer);
      timer = null;
    }
  });
  seek.addEventListener("change", () => jump(Number(seek.value)));
  for (const marker of document.querySelectorAll(".marker")) {
    const t = Number(marker.dataset.t);
    marker.style.left = `${duration > 0 ? (t / duration) * 100 : 0}%`;
    marker.addEventListener("click", () => jump(t));
  }
  for (const link of document.querySelectorAll("a.seek")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      jump(Number(link.dataset.t));
    });
  }
  show();
}

function live(player) {
  const screen = new Screen(document.getElementById("screen"));
  const status = document.getElementById("live-status");
  const table = document.querySelector("#events tbody");
  const id = player.dataset.session;
  const socket = new WebSocket(`wss://${location.host}/ui/sessions/${encodeURIComponent(id)}/live`);
  socket.addEventListener("open", () => {
    status.textContent = "Live";
    status.className = "live-status on";
  });
  socket.addEventListener("message", (message) => {
    const data = JSON.parse(message.data);
    if (data.event) {
      const row = document.createElement("tr");
      row.className = `event marker-${data.event.marker}`;
      const when = document.createElement("td");
      when.textContent = data.event.clock;
      const what = document.createElement("td");
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = data.event.kind;
      what.append(kind, ` ${data.event.text}`);
      row.append(when, what);
      table.prepend(row);
    } else if (data.ended) {
      status.textContent = `Ended: ${data.ended}`;
      status.className = "live-status off";
      document.getElementById("state").textContent = "ended";
    } else {
      screen.paint(data);
    }
  });
  socket.addEventListener("close", (event) => {
    if (!status.classList.contains("off")) {
      status.textContent = `Disconnected${event.reason ? `: ${event.reason}` : ""}`;
      status.className = "live-status off";
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  // Forms submit once: a second click while the first is in flight does nothing. Downloads
  // leave the page where it is, so their buttons stay usable.
  for (const form of document.querySelectorAll("form:not(.download)")) {
    form.addEventListener("submit", () => {
      for (const button of form.querySelectorAll("button")) button.disabled = true;
    });
  }
  const name = document.getElementById("quarantine-name");
  if (name) {
    const kind = name.form.querySelector("select[name=kind]");
    kind.addEventListener("change", () => {
      name.value = kind.value === "asset" ? name.dataset.asset : name.dataset.vendor;
    });
  }
  const player = document.getElementById("player");
  if (player && player.dataset.live) live(player);
  else if (player) replay(player);
});
