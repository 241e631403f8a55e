// pjloop studio: the page's behaviour. Each button posts its controls to /api/*; the WAV that comes back is
// decoded once with Web Audio and played by an AudioBufferSourceNode with loop = true, so the bar repeats
// sample-exactly, without the gap an <audio loop> element may leave. Refusals arrive as {"error": one line}.
'use strict';

const $ = id => document.getElementById(id);
let info = null;        // GET /api/info: genres, limits, defaults
let ctx = null;         // the AudioContext, made on the first click (browsers allow sound after a gesture)
let source = null;      // what is playing now
let base = null;        // the last loop made with Make: Variations and Morph start from it

async function api(path, body) {
  const options = body === undefined ? {} :
    {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)};
  const res = await fetch(path, options);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) throw new Error((data && data.error) || `the studio answered HTTP ${res.status}`);
  return data;
}

// One line above the stage: a refusal ('error', the studio's own words) or a note ('note').
function say(text, kind = 'error') {
  const m = $('message');
  m.textContent = text || '';
  m.className = kind;
  m.hidden = !text;
}

function stop() {
  if (source) { source.stop(); source.disconnect(); source = null; }
  $('now-status').textContent = $('now-status').textContent.replace(/^playing/, 'stopped');
}

async function play(url, label) {
  ctx = ctx || new AudioContext();
  if (ctx.state === 'suspended') await ctx.resume();
  const buffer = await ctx.decodeAudioData(await (await fetch(url)).arrayBuffer());
  stop();
  source = ctx.createBufferSource();
  source.buffer = buffer;
  source.loop = true;
  source.connect(ctx.destination);
  source.start();
  const s = $('now-status');
  s.textContent = `playing ${label} on repeat (${buffer.duration.toFixed(3)} s)`;
  s.dataset.duration = buffer.duration;
}

function genreText(g) { return g ? ` ${g}` : ''; }

// Show one made thing (a loop, a variation or a morph) in the "now" panel, then play it ("playing <label>").
async function show(item, title, label = title) {
  $('now').hidden = false;
  $('now-title').textContent = title;
  $('now-mel').src = item.mel;
  $('now-status').dataset.url = item.wav;
  $('now-status').textContent = 'loading...';
  const links = [['dl-bar', item.wav], ['dl-x4', item.wav_x4], ['dl-recipe', item.recipe_url]];
  for (const [id, url] of links) {
    const a = $(id);
    a.hidden = !url;
    if (url) { a.href = url; a.download = url.split('/').pop(); }
  }
  $('dl-bar').textContent = item.bars ? `${item.bars} bars` : 'one bar';
  $('now-command').textContent = `${item.command}\n# writes ${item.remade}`;
  $('now-recipe').textContent = JSON.stringify(item.recipe || item.recipes || {}, null, 1);
  try {
    await play(item.wav, label);
  } catch (e) {
    $('now-status').textContent = `cannot play here (${e.message}); the downloads still work`;
  }
}

function controls() {
  return {genre: info.genres ? $('genre').value : null, seed: $('seed').value.trim(),
          truncation: Number($('truncation').value), bpm: Number($('bpm').value)};
}

// Run one request with the buttons held, the time it took in the status line, a refusal in the message box.
async function busy(work) {
  const buttons = ['make', 'variations', 'morph'].map($);
  buttons.forEach(b => { b.disabled = true; });
  say('');
  try {
    await work();
  } catch (e) {
    say(e.message);
  } finally {
    buttons.forEach(b => { b.disabled = false; });
  }
}

async function make() {
  const c = controls();
  const loop = await api('/api/loop', c);
  base = {seed: loop.recipe.seed, genre: loop.recipe.genre, truncation: loop.recipe.truncation};
  $('row').replaceChildren();
  const label = `seed ${base.seed}${genreText(base.genre)}`;
  await show(loop, `${label}, ${c.bpm} BPM, made in ${loop.took_s} s`, label);
}

function card(loop, label) {
  const div = document.createElement('div');
  div.className = 'card';
  const img = document.createElement('img');
  img.src = loop.mel;
  img.alt = `mel of ${label}`;
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = `\u25b6 ${label}`;
  button.addEventListener('click', () => show(loop, label));
  const a = document.createElement('a');
  a.href = loop.wav;
  a.download = loop.wav.split('/').pop();
  a.textContent = 'wav';
  div.append(img, button, a);
  return div;
}

async function variations() {
  const from = base || controls();
  const body = {...controls(), seed: from.seed, genre: from.genre, truncation: from.truncation,
                n: Number($('n').value), spread: Number($('spread').value)};
  const made = await api('/api/variations', body);
  const cards = made.loops.map((loop, k) => {
    loop.command = made.command;
    loop.remade = made.remade;
    return card(loop, k ? `variation ${k}` : `seed ${made.seed}`);
  });
  $('row').replaceChildren(...cards);
  $('row').dataset.count = cards.length;
  say(`${made.loops.length - 1} variations of seed ${made.seed} in ${made.took_s} s: click one to hear it`, 'note');
}

async function morph() {
  const from = base || controls();
  const body = {seed_a: from.seed, genre_a: from.genre, truncation: from.truncation, bpm: Number($('bpm').value),
                seed_b: $('seed-b').value.trim(), genre_b: info.genres ? $('genre-b').value : null,
                bars: Number($('bars').value)};
  const m = await api('/api/morph', body);
  const [a, b] = m.seeds;
  const label = `morph seed ${a}${genreText(m.genres[0])} \u2192 seed ${b}${genreText(m.genres[1])}`;
  await show(m, `${label}, ${m.bars} bars, made in ${m.took_s} s`, label);
}

function slider(id, digits) {
  const show = () => { $(`${id}-value`).textContent = Number($(id).value).toFixed(digits); };
  $(id).addEventListener('input', show);
  show();
}

async function start() {
  try {
    info = await api('/api/info');
  } catch (e) {
    say(`the studio is not answering: ${e.message}`);
    return;
  }
  const genres = info.genres || [];
  for (const id of ['genre', 'genre-b']) {
    $(id).replaceChildren(...genres.map(g => new Option(g, g)));
  }
  $('genre-row').hidden = $('genre-b-row').hidden = !info.genres;
  const [kind, file] = info.vocoder.split(':');            // 'fast:/path/to/vocoder.pt' or 'griffin-lim'
  $('model').textContent = `${info.loops} loops, step ${info.step}` +
    (info.genres ? `, genres: ${genres.join(', ')}` : ', unconditional') +
    ` \u00b7 vocoder ${kind}${file ? ` (${file.split('/').pop()})` : ''}`;
  const L = info.limits;
  Object.assign($('bpm'), {min: L.bpm[0], max: L.bpm[1]});
  $('truncation').max = L.truncation_max;
  $('bars').max = L.bars;
  $('n').max = L.variations;
  $('spread').max = L.spread;
  ['truncation', 'spread'].forEach(id => slider(id, 2));
  slider('bpm', 0);
  $('new-seed').addEventListener('click', () => { $('seed').value = 'new'; });
  $('make').addEventListener('click', () => busy(make));
  $('variations').addEventListener('click', () => busy(variations));
  $('morph').addEventListener('click', () => busy(morph));
  $('stop').addEventListener('click', stop);
  document.body.dataset.ready = 'yes';
}

start();
