import streamlit as st

st.title("forest")
st.info("This page is being built.")
