'use strict';
// The demo page: reads the model's limits from /api/info, posts the form as JSON to /api/generate, follows the job's
// progress as server-sent events (polling /api/jobs/ID when events are unavailable) and keeps a gallery of this
// session's pictures.
(() => {
  const $ = id => document.getElementById(id);
  const fields = ['prompt', 'seed', 'steps', 'guidance', 'width', 'height', 'lora', 'strength'];
  let info = null;
  let pending = 0;

  function showError(message, field) {
    const e = $('error');
    e.textContent = message;
    e.hidden = !message;
    for (const f of fields) $(f).classList.toggle('invalid', f === field);
  }

  function setStatus(text, value, max) {
    $('status').textContent = text;
    $('progress').max = max || 1;
    $('progress').value = value || 0;
  }

  async function loadInfo() {
    try {
      const r = await fetch('/api/info');
      info = await r.json();
    } catch (e) {
      showError('cannot reach the server: ' + e);
      return;
    }
    document.title = info.title;
    $('title').textContent = info.title;
    $('model').textContent = info.model + ' on ' + info.backend;
    $('steps').value = info.defaults.steps;
    $('steps').max = info.limits.maxSteps;
    $('guidance').value = info.defaults.guidance;
    $('guidance').max = info.limits.maxGuidance;
    for (const f of ['width', 'height']) {
      $(f).value = info.defaults[f];
      $(f).max = info.limits.maxSide;
    }
    $('seed').max = info.limits.maxSeed;
    for (const name of info.loras) {
      const o = document.createElement('option');
      o.value = name;
      o.textContent = name;
      $('lora').appendChild(o);
    }
    if (info.loras.length > 0) $('lora').value = info.loras[0];
    $('strength').disabled = $('lora').value === 'none';
    for (const p of info.examplePrompts) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = p;
      b.addEventListener('click', () => { $('prompt').value = p; });
      $('examples').appendChild(b);
    }
    if (!$('prompt').value && info.examplePrompts.length) $('prompt').value = info.examplePrompts[0];
    $('generate').disabled = false;
    document.body.dataset.ready = 'true';
  }

  function body() {
    const num = id => $(id).value.trim() === '' ? null : Number($(id).value);
    return {
      prompt: $('prompt').value,
      seed: num('seed'),
      steps: num('steps'),
      guidance: num('guidance'),
      width: num('width'),
      height: num('height'),
      lora: $('lora').value,
      strength: Number($('strength').value),
    };
  }

  async function submit(ev) {
    ev.preventDefault();
    showError('');
    let r, job;
    try {
      r = await fetch('/api/generate', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body())});
      job = await r.json();
    } catch (e) {
      showError('the request failed: ' + e);
      return;
    }
    if (!r.ok) {
      showError(job.error || ('HTTP ' + r.status), job.field);
      return;
    }
    pending++;
    follow(job);
  }

  function progress(job) {
    if (job.state === 'queued') setStatus('queued (position ' + job.position + ')', 0, job.steps);
    else if (job.state === 'running') setStatus('step ' + job.step + ' / ' + job.steps, job.step, job.steps);
  }

  function finished(job) {
    pending--;
    if (job.state === 'done') {
      setStatus('done in ' + job.millis + ' ms' + (pending > 0 ? ' · ' + pending + ' more coming' : ''), 1, 1);
      show(job);
      addToGallery(job);
    } else {
      setStatus('failed', 0, 1);
      showError(job.error || 'generation failed');
    }
  }

  function follow(job) {
    progress(job);
    if (!window.EventSource) return poll(job.id);
    const es = new EventSource(job.events);
    let over = false;
    es.addEventListener('progress', e => progress(JSON.parse(e.data)));
    for (const kind of ['done', 'failed'])
      es.addEventListener(kind, e => { over = true; es.close(); finished(JSON.parse(e.data)); });
    es.onerror = () => { if (!over) { es.close(); poll(job.id); } };
  }

  async function poll(id) {
    for (;;) {
      let job;
      try {
        job = await (await fetch('/api/jobs/' + id)).json();
      } catch (e) {
        await new Promise(res => setTimeout(res, 1000));
        continue;
      }
      if (job.state === 'done' || job.state === 'failed') return finished(job);
      progress(job);
      await new Promise(res => setTimeout(res, 500));
    }
  }

  function caption(job) {
    const q = job.request;
    return '"' + q.prompt + '" · seed ' + q.seed + ' · ' + q.steps + ' steps · ' + q.width + '×' + q.height
      + (q.lora ? ' · ' + q.lora + ' ×' + q.strength : '');
  }

  function show(job) {
    $('result').src = job.image;
    $('result').dataset.job = job.id;
    // small pictures (the toy model's) are shown enlarged, pixel for pixel
    const zoom = Math.max(1, Math.floor(384 / Math.max(job.request.width, job.request.height)));
    $('result').width = job.request.width * zoom;
    $('result').height = job.request.height * zoom;
    $('result-caption').textContent = caption(job);
    $('download').href = job.download;
    $('download').setAttribute('download', job.fileName);
    $('result-box').hidden = false;
  }

  function addToGallery(job) {
    const fig = document.createElement('figure');
    const img = document.createElement('img');
    img.src = job.image;
    img.alt = caption(job);
    img.title = caption(job);
    img.dataset.job = job.id;
    img.addEventListener('click', () => show(job));
    const cap = document.createElement('figcaption');
    const a = document.createElement('a');
    a.href = job.download;
    a.setAttribute('download', job.fileName);
    a.textContent = 'seed ' + job.request.seed;
    cap.appendChild(a);
    fig.appendChild(img);
    fig.appendChild(cap);
    $('gallery').prepend(fig);
  }

  $('lora').addEventListener('change', () => { $('strength').disabled = $('lora').value === 'none'; });
  $('strength').addEventListener('input', () => { $('strength-value').textContent = Number($('strength').value).toFixed(2); });
  $('random-seed').addEventListener('click', () => { $('seed').value = Math.floor(Math.random() * 2 ** 32); });
  $('form').addEventListener('submit', submit);
  loadInfo();
})();
