import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import ShareView from './components/ShareView.svelte';
import { applyTheme } from './lib/prefs.svelte';
import { shareIdOf } from './lib/share';

applyTheme();

// A shared snapshot (/s/{share_id}) is read without signing in: it gets its own small view.
const shareId = shareIdOf(location.pathname);
const target = document.getElementById('app')!;
const app = shareId ? mount(ShareView, { target, props: { shareId } }) : mount(App, { target });

export default app;
